"""The CSV, the seeded split and the batches: what the data module reads, holds out and hands to the loops."""

import builtins
import io
import os

import pandas as pd
import pytest
import torch

from tests.book import BOOK_TRAIN_ROWS, BOOK_VAL_ROWS, T_C, T_U
from thermometer.data import RowBatches, TemperatureDataModule, read_readings
from thermometer.data import batches as batches_module
from thermometer.data import module as data_module
from thermometer.data import readings as readings_module
from thermometer.errors import UsageError


def loaded(**kwargs) -> TemperatureDataModule:
    data = TemperatureDataModule(**kwargs)
    data.setup("fit")
    return data


def test_bundled_csv_is_the_books_readings():
    data = loaded(val_fraction=0)  # the rows as the file has them
    assert data.inputs.dtype == data.targets.dtype == torch.float32
    assert torch.equal(data.inputs[:, 0], T_U)
    assert torch.equal(data.targets, T_C)


def test_default_split_is_the_books():
    data = loaded()
    order, n_train = data.split(11)
    train, val = order[:n_train], order[n_train:]
    assert sorted(train.tolist()) == sorted(BOOK_TRAIN_ROWS) and sorted(val.tolist()) == sorted(BOOK_VAL_ROWS)
    # Kept in that order, training rows first: each set is a slice.
    assert torch.equal(data.train_inputs[:, 0], T_U[train]) and torch.equal(data.train_targets, T_C[train])
    assert torch.equal(data.val_inputs[:, 0], T_U[val]) and torch.equal(data.val_targets, T_C[val])


@pytest.mark.parametrize(("rows", "val_fraction", "n_val"), [(11, 0.2, 2), (11, 0.5, 5), (100, 0.2, 20), (7, 0.3, 2)])
def test_split_sizes_cover_every_row_once(tmp_path, rows, val_fraction, n_val):
    csv = tmp_path / "r.csv"
    pd.DataFrame({"t_u": range(rows), "t_c": range(rows)}).to_csv(csv, index=False)
    data = loaded(csv_path=csv, val_fraction=val_fraction)
    assert len(data.val_targets) == n_val
    assert sorted(torch.cat([data.train_inputs[:, 0], data.val_inputs[:, 0]]).tolist()) == list(range(rows))


def test_split_is_seeded():
    assert torch.equal(loaded(split_seed=7).val_targets, loaded(split_seed=7).val_targets)
    assert not torch.equal(loaded(split_seed=7).val_targets, loaded(split_seed=8).val_targets)


def test_val_fraction_zero_trains_on_every_row_in_order():
    data = loaded(val_fraction=0)
    assert torch.equal(data.train_targets, T_C)
    assert data.val_dataloader() == []


def test_full_batch_by_default_and_batch_size_slices():
    x, y = next(iter(loaded().train_dataloader()))
    assert x.shape == (9, 1) and y.shape == (9,)
    batches = list(loaded(batch_size=4).train_dataloader())
    assert [len(t_c) for _, t_c in batches] == [4, 4, 1]
    assert sorted(torch.cat([t_c for _, t_c in batches]).tolist()) == sorted(T_C[BOOK_TRAIN_ROWS].tolist())


def test_shuffled_batches_are_seeded_by_run_and_epoch():
    def epoch(n: int, seed: int = 42) -> list[list[int]]:
        torch.manual_seed(seed)
        batches = RowBatches(10, 4, shuffle=True)
        batches.set_epoch(n)
        return [b.tolist() for b in batches]

    assert epoch(0) == epoch(0) and epoch(0) != epoch(1) and epoch(0) != epoch(0, seed=7)
    assert [len(b) for b in epoch(3)] == [4, 4, 2] and sorted(i for b in epoch(3) for i in b) == list(range(10))
    assert list(RowBatches(10, 4, shuffle=False)) == [slice(0, 4), slice(4, 8), slice(8, 10)]  # in order: views


def test_processes_share_the_batches_and_take_as_many_steps():
    shares = []
    for rank in range(3):
        batches = RowBatches(10, 2, shuffle=False)
        batches.rank, batches.processes = rank, 3
        shares.append([(b.start, b.stop) for b in batches])
    assert [len(share) for share in shares] == [2, 2, 2]  # 5 batches for 3 processes: the first is taken again
    assert sorted({batch for share in shares for batch in share}) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]


def test_many_rows_get_mini_batches_by_default(monkeypatch, capsys):
    monkeypatch.setattr(data_module, "FULL_BATCH_ROWS", 5)
    monkeypatch.setattr(data_module, "BIG_DATA_BATCH", 4)
    data = loaded()
    assert data.batch_size == 4 and sorted(len(t_c) for _, t_c in data.train_dataloader()) == [1, 4, 4]
    assert "Batches:      4 rows a step: 9 training rows are more than one batch should hold (5)" in (
        capsys.readouterr().out
    )


def test_state_dict_is_the_split_and_refuses_another():
    trained = loaded(split_seed=3)
    state = trained.state_dict()
    assert state.pop("training_rows") == loaded(split_seed=3).fingerprint != loaded(split_seed=4).fingerprint
    assert state == {"rows": 11, "val_fraction": 0.2, "split_seed": 3}  # bytes, for any size
    loaded(split_seed=3).load_state_dict(trained.state_dict())
    with pytest.raises(UsageError, match=r"split with val_fraction 0\.2 and split_seed 3, but the book's readings"):
        loaded(split_seed=4).load_state_dict(trained.state_dict())


def test_own_csv_with_several_inputs(tmp_path):
    csv = tmp_path / "sensors.csv"
    pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [5.0, 6, 7, 9], "note": list("wxyz"), "y": [0.0, 1, 2, 3]}).to_csv(
        csv, index=False
    )
    data = loaded(csv_path=csv, input_columns=["a", "b"], target_column="y", val_fraction=0)
    assert data.inputs.tolist() == [[1, 5], [2, 6], [3, 7], [4, 9]]


def test_past_a_million_rows_are_shuffled_once_and_batches_visited_in_a_new_order(monkeypatch):
    monkeypatch.setattr(data_module, "FULL_BATCH_ROWS", 6)
    monkeypatch.setattr(batches_module, "FULL_BATCH_ROWS", 6)
    data = loaded(val_fraction=0)
    assert not torch.equal(data.train_targets, T_C) and sorted(data.train_targets.tolist()) == sorted(T_C.tolist())
    torch.manual_seed(42)
    batches = RowBatches(11, 4, shuffle=True)
    orders = []
    for epoch in range(3):
        batches.set_epoch(epoch)
        orders.append([(b.start, b.stop) for b in batches])  # slices: views, no gathering
    assert all(sorted(order) == [(0, 4), (4, 8), (8, 11)] for order in orders) and len(set(map(tuple, orders))) > 1


def test_a_header_of_thousands_of_columns_is_named_in_one_short_line(tmp_path):
    path = tmp_path / "wide.csv"
    names = [f"col{k}" for k in range(3000)]
    path.write_text(",".join(names) + "\n" + ",".join("1" * 3000) + "\n" + ",".join("2" * 3000) + "\n")
    with pytest.raises(UsageError) as error:
        TemperatureDataModule(csv_path=path).load()
    message = str(error.value)
    assert "found 3000 columns, 'col0', 'col1'" in message and "'col9' and 2990 more." in message
    assert len(message) < 300


def book_csv(path, rows=None):
    """The book's readings as a CSV, with `rows` (line number: text) put in place of theirs."""
    lines = ["t_u,t_c", *(f"{u},{c}" for u, c in zip(T_U.tolist(), T_C.tolist(), strict=True))]
    for number, text in (rows or {}).items():
        lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_valid_csv_is_opened_once_and_parsed_once_in_chunks(tmp_path, monkeypatch):
    csv = book_csv(tmp_path / "readings.csv")
    opened, parsed = [], []
    real_open, read_csv = io.open, pd.read_csv

    def counted_open(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike) and os.fspath(file) == str(csv):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    def counted_read_csv(*args, **kwargs):
        parsed.append(args)
        return read_csv(*args, **kwargs)

    for module, name in ((io, "open"), (builtins, "open")):  # pathlib opens with io.open, most code with open
        monkeypatch.setattr(module, name, counted_open)
    monkeypatch.setattr(pd, "read_csv", counted_read_csv)
    monkeypatch.setattr(readings_module, "READ_ROWS", 4)  # 11 rows: 3 chunks, still one pass
    frame = read_readings(csv, ["t_u"], "t_c")
    assert len(opened) == 1 and len(parsed) == 1
    assert torch.equal(torch.from_numpy(frame["t_u"].to_numpy()), T_U)
    assert torch.equal(torch.from_numpy(frame["t_c"].to_numpy()), T_C)


@pytest.mark.parametrize(
    ("line", "text", "message"),
    [
        (3, "55.9,warm", "line 3, column 't_c': 'warm' is not a finite number"),
        (10, "48.4,warm", "line 10, column 't_c': 'warm' is not a finite number"),
        (11, "1e39,13.0", "line 11, column 't_u': 1e39 is beyond float32"),
        (12, "-inf,21.0", "line 12, column 't_u': -inf is not a finite number"),
        (9, "21.8,", "line 9, column 't_c': blank or NaN is not a finite number"),
    ],
)
def test_a_bad_value_in_any_chunk_is_named_by_its_line(tmp_path, monkeypatch, line, text, message):
    monkeypatch.setattr(readings_module, "READ_ROWS", 4)  # lines 2-5, 6-9, 10-12
    csv = book_csv(tmp_path / "bad.csv", {line: text})
    with pytest.raises(UsageError) as error:
        read_readings(csv, ["t_u"], "t_c")
    assert str(error.value).startswith(f"{csv}: {message}")
