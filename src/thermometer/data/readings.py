"""Reading a CSV of readings: the chosen columns as float32, or one message naming the file, line, column and fix."""

from __future__ import annotations

import csv
import errno
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from thermometer.errors import UsageError

FIX = "Fix or remove that row."
READ_ROWS = 1_000_000
"""Rows parsed at a time: a whole file's text, tokens and columns at once would need several times its readings."""


def read_readings(
    csv_path: Path | str, input_columns: Sequence[str], target_column: str | None, option: str = "--data.csv_path"
) -> pd.DataFrame:
    """Read the input and target columns of a CSV as float32, or raise `UsageError` saying what is wrong.

    The file is opened once and parsed once; only a bad value sends the reader back, to say where it is written.
    `target_column` None reads the inputs only (readings to predict from); `option` names the file's option.
    """
    path = Path(csv_path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory. Give a CSV file with {option}.")
    try:
        path.stat()
    except OSError as error:  # no such file, a symlink loop, a path component too long, ...
        reason = "no such file" if error.errno == errno.ENOENT else error.strerror.lower()
        raise UsageError(f"{path}: {reason}. Give an existing CSV with {option}.") from None
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file (a device or a pipe); give a CSV file with {option}.")
    columns = [*input_columns, *([target_column] if target_column else [])]
    try:
        # utf-8-sig: a byte order mark is no part of the first column's name (pandas drops it too).
        with path.open(encoding="utf-8-sig", newline="") as file:
            header, first = first_records(file)
            check_header(path, header, first, columns)
            file.seek(0)  # pandas takes the header too (from the buffer, not the disk): its line numbers are the file's
            try:
                frame = read_columns(file, columns)
            except (pd.errors.ParserError, UnicodeDecodeError):
                raise
            except ValueError as error:  # a cell that is not a number: pandas says which, not where
                raise UsageError(not_a_number(path, as_text(file, columns)) or f"{path}: {error}.") from None
            if frame.empty:
                raise UsageError(f"{path}: a header line but no rows of readings.")
            check_finite(path, frame, file)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: the file is empty. It needs a header line with {columns} and rows.") from None
    except (OSError, UnicodeDecodeError, csv.Error, pd.errors.ParserError) as error:
        reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
        raise UsageError(f"{path}: cannot be read as a CSV ({reason}).") from None
    return frame


def first_records(file: TextIO) -> tuple[list[str], list[str]]:
    """The header's names as written (no renaming) and the first row's fields, past blank lines as pandas reads."""
    records = (fields for fields in csv.reader(file) if len(fields) > 1 or "".join(fields).strip())
    header = next(records, None)
    if header is None:
        raise pd.errors.EmptyDataError("No columns to parse from file")
    return header, next(records, [])


def check_header(path: Path, header: list[str], first: list[str], columns: list[str]) -> None:
    """Raise `UsageError` unless the header names each of `columns` once and the first row fits under it."""
    duplicated = sorted(name for name, times in Counter(header).items() if times > 1)
    if duplicated:
        raise UsageError(f"{path}: the header names {', '.join(map(repr, duplicated))} more than once; rename them.")
    if len(first) == len(header) + 1 and first[-1] == "":
        raise UsageError(
            f"{path}: line 2 ends with a comma, one field more than the header: remove the trailing commas "
            "(or end the header line with one too)."
        )
    missing = [c for c in columns if c not in header]
    if missing and header[0].startswith("#"):
        raise UsageError(
            f"{path}: the first line is a comment ({header[0][:40]!r}); the first line must be the header "
            f"naming the columns, e.g. {','.join(columns)}. Remove the comment lines above it."
        )
    if missing:
        separator = next((sep for sep in ";\t| " if len(header) == 1 and sep in header[0]), None)
        fix = (
            f"One column found: the file is separated by {separator!r}; it must be comma-separated."
            if separator
            else "Choose columns with --data.input_columns and --data.target_column."
        )
        found = (
            f"{header}"
            if len(header) <= 12
            # one short line, not 3000 names
            else (f"{len(header)} columns, {', '.join(map(repr, header[:10]))} and {len(header) - 10} more")
        )
        raise UsageError(f"{path}: no column {', '.join(map(repr, missing))}; found {found}. {fix}")
    if len(first) > len(header):  # pandas would take the extra fields for the rows' names, and shift the columns
        names = ", ".join(columns)
        raise UsageError(f"{path}: rows have more fields than the header names ({names}); remove the extras.")


def read_columns(file: TextIO, columns: list[str]) -> pd.DataFrame:
    """`columns` of the CSV as float32, read `READ_ROWS` at a time: the readings, once, and little more.

    All columns are parsed, so that a row with more fields than the header is an error, not silently cut short.
    Each chunk's columns are copied out of it (a view would keep the chunk's other columns alive), then joined one
    column at a time; the frame holds those arrays without copying them again.
    """
    parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    with warnings.catch_warnings():  # a number beyond float32 becomes inf, which `check_finite` says, precisely
        warnings.filterwarnings("ignore", message="overflow encountered in cast", category=RuntimeWarning)
        # Straight to float32: pandas' C parser is faster here than its pyarrow engine, and leaner.
        with pd.read_csv(file, dtype=dict.fromkeys(columns, "float32"), chunksize=READ_ROWS) as chunks:
            for chunk in chunks:
                for column in columns:
                    parts[column].append(chunk[column].to_numpy(dtype=np.float32, copy=True))
    joined = {c: np.concatenate(parts.pop(c) or [np.empty(0, np.float32)]) for c in columns}
    return pd.DataFrame(joined, copy=False)


def as_text(file: TextIO, columns: list[str]) -> Iterator[pd.DataFrame]:
    """`columns` as written, read again from the start `READ_ROWS` at a time, indexed by row.

    Only for a bad value's message: pandas' float parser tells neither where a value that is no number is, nor how
    a number beyond float32 was written, so the file is read once more, as text, up to the chunk that holds it.
    """
    file.seek(0)
    with pd.read_csv(file, usecols=columns, dtype=str, chunksize=READ_ROWS) as chunks:
        for chunk in chunks:
            yield chunk[columns]


def not_a_number(path: Path, text: Iterator[pd.DataFrame]) -> str | None:
    """The message for the first cell of `text` that is no number, None if `pd.to_numeric` reads every one.

    Blank cells are NaN, not text: their turn comes later.
    """
    for chunk in text:
        bad = (chunk.apply(pd.to_numeric, errors="coerce").isna() & chunk.notna()).to_numpy()
        if bad.any():
            row, column = np.argwhere(bad)[0]
            line, name, value = chunk.index[row] + 2, chunk.columns[column], chunk.iat[row, column]
            return f"{path}: line {line}, column {name!r}: {value!r} is not a finite number. {FIX}"
    return None


def check_finite(path: Path, frame: pd.DataFrame, file: TextIO) -> None:
    """Raise `UsageError` naming the first reading of `frame` that is blank, NaN, infinite or beyond float32."""
    finite = np.isfinite(frame)  # column by column: no copy of the whole table
    if finite.all(axis=None):
        return
    row, column = np.argwhere(~finite.to_numpy())[0]
    name, value = frame.columns[column], frame.iat[row, column]
    if np.isinf(value):  # written as inf, or a number beyond float32: the text says which
        chunk = next(chunk for chunk in as_text(file, [name]) if row in chunk.index)
        text = str(chunk.at[row, name]).strip()
        if np.isfinite(pd.to_numeric(text, errors="coerce")):
            raise UsageError(
                f"{path}: line {row + 2}, column {name!r}: {text} is beyond float32, the readings' type "
                f"(±3.4e38). {FIX}"
            )
    shown = "blank or NaN" if np.isnan(value) else str(value)
    raise UsageError(f"{path}: line {row + 2}, column {name!r}: {shown} is not a finite number. {FIX}")
