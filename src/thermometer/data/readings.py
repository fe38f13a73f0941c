"""Reading a CSV of readings: the chosen columns as float32, or one message naming the file, line, column and fix."""

from __future__ import annotations

import errno
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from thermometer.errors import UsageError


def read_readings(
    csv_path: Path | str, input_columns: Sequence[str], target_column: str | None, option: str = "--data.csv_path"
) -> pd.DataFrame:
    """Read the input and target columns of a CSV as float32, or raise `UsageError` saying what is wrong.

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
        header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()  # as written: no renaming
        duplicated = sorted({str(c) for c in header if header.count(c) > 1})
        if duplicated:
            names = ", ".join(map(repr, duplicated))
            raise UsageError(f"{path}: the header names {names} more than once; rename them.")
        missing = [c for c in columns if c not in header]
        try:
            first = pd.read_csv(path, header=None, skiprows=1, nrows=1, dtype=str, skip_blank_lines=False)
        except pd.errors.EmptyDataError:  # a header and no rows: said below
            first = pd.DataFrame()
        if len(first.columns) == len(header) + 1 and first.iloc[0].isna().iloc[-1]:
            raise UsageError(
                f"{path}: line 2 ends with a comma, one field more than the header: remove the trailing commas "
                "(or end the header line with one too)."
            )
        if missing and str(header[0]).startswith("#"):
            raise UsageError(
                f"{path}: the first line is a comment ({str(header[0])[:40]!r}); the first line must be the header "
                f"naming the columns, e.g. {','.join(columns)}. Remove the comment lines above it."
            )
        if missing:
            separator = next((sep for sep in ";\t| " if len(header) == 1 and sep in str(header[0])), None)
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
        # Parsed once, straight to float32: pandas' C parser is faster here than its pyarrow engine, and leaner.
        try:
            # All columns, so that a row with more fields than the header is an error, not silently cut short.
            with warnings.catch_warnings():  # a number beyond float32 becomes inf, which is said below, precisely
                warnings.filterwarnings("ignore", message="overflow encountered in cast", category=RuntimeWarning)
                frame = read_columns(path, columns)
        except (pd.errors.ParserError, UnicodeDecodeError):
            raise
        except (ValueError, TypeError):  # a cell that is not a number: read again as text, to say which
            raise UsageError(not_a_number(path, pd.read_csv(path, usecols=columns, dtype=str)[columns])) from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: the file is empty. It needs a header line with {columns} and rows.") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
        raise UsageError(f"{path}: cannot be read as a CSV ({reason}).") from None
    if frame.empty:
        raise UsageError(f"{path}: a header line but no rows of readings.")
    finite = np.isfinite(frame)  # column by column: no copy of the whole table
    if not finite.all(axis=None):
        row, column = np.argwhere(~finite.to_numpy())[0]
        value = frame.iat[row, column]
        written = pd.read_csv(path, usecols=[columns[column]], dtype=str, skiprows=range(1, row + 1), nrows=1)
        text = str(written.iat[0, 0]).strip()
        if np.isinf(value) and np.isfinite(pd.to_numeric(text, errors="coerce")):
            raise UsageError(
                f"{path}: line {row + 2}, column {columns[column]!r}: {text} is beyond float32, the readings' type "
                f"(±3.4e38). {FIX}"
            )
        shown = "blank or NaN" if np.isnan(value) else str(value)
        raise UsageError(f"{path}: line {row + 2}, column {columns[column]!r}: {shown} is not a finite number. {FIX}")
    return frame


FIX = "Fix or remove that row."
READ_ROWS = 1_000_000
"""Rows parsed at a time: a whole file's text, tokens and columns at once would need several times its readings."""


def read_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    """`columns` of the CSV as float32, read `READ_ROWS` at a time: the readings, once, and little more.

    Each chunk's columns are copied out of it (a view would keep the chunk's other columns alive), then joined one
    column at a time; the frame holds those arrays without copying them again.
    """
    parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    with pd.read_csv(path, dtype=dict.fromkeys(columns, "float32"), chunksize=READ_ROWS) as chunks:
        for chunk in chunks:
            for column in columns:
                parts[column].append(chunk[column].to_numpy(dtype=np.float32, copy=True))
    joined = {c: np.concatenate(parts.pop(c) or [np.empty(0, np.float32)]) for c in columns}
    return pd.DataFrame(joined, copy=False)


def not_a_number(path: Path, text: pd.DataFrame) -> str:
    """The message for the first cell of `text` that is no number (blank cells are NaN: their turn comes later)."""
    numbers = text.apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna() & text.notna()
    if not bad.to_numpy().any():  # pandas took the first of more fields than the header names as the row's name
        return f"{path}: rows have more fields than the header names ({', '.join(text.columns)}); remove the extras."
    row, column = np.argwhere(bad.to_numpy())[0]
    value = text.iat[row, column]
    return f"{path}: line {row + 2}, column {text.columns[column]!r}: {value!r} is not a finite number. {FIX}"
