import pandas as pd
import pytest
import torch

from tests.book import BOOK_TRAIN_ROWS, BOOK_VAL_ROWS, T_C, T_U
from thermometer.data import TemperatureDataModule
from thermometer.errors import UsageError


def loaded(**kwargs) -> TemperatureDataModule:
    data = TemperatureDataModule(**kwargs)
    data.setup("fit")
    return data


def test_bundled_csv_is_the_books_readings():
    data = loaded()
    assert data.inputs.dtype == data.targets.dtype == torch.float32
    assert torch.equal(data.inputs[:, 0], T_U)
    assert torch.equal(data.targets, T_C)


def test_default_split_is_the_books():
    data = loaded()
    assert sorted(data.train_rows.tolist()) == sorted(BOOK_TRAIN_ROWS)
    assert sorted(data.val_rows.tolist()) == sorted(BOOK_VAL_ROWS)


@pytest.mark.parametrize(("rows", "val_fraction", "n_val"), [(11, 0.2, 2), (11, 0.5, 5), (100, 0.2, 20), (7, 0.3, 2)])
def test_split_sizes_cover_every_row_once(tmp_path, rows, val_fraction, n_val):
    csv = tmp_path / "r.csv"
    pd.DataFrame({"t_u": range(rows), "t_c": range(rows)}).to_csv(csv, index=False)
    data = loaded(csv_path=csv, val_fraction=val_fraction)
    assert len(data.val_rows) == n_val
    assert sorted(torch.cat([data.train_rows, data.val_rows]).tolist()) == list(range(rows))


def test_split_is_seeded():
    assert torch.equal(loaded(split_seed=7).val_rows, loaded(split_seed=7).val_rows)
    assert not torch.equal(loaded(split_seed=7).val_rows, loaded(split_seed=8).val_rows)


def test_val_fraction_zero_trains_on_every_row_in_order():
    data = loaded(val_fraction=0)
    assert data.train_rows.tolist() == list(range(11))
    assert data.val_dataloader() == []


def test_full_batch_by_default_and_batch_size_slices():
    x, y = next(iter(loaded().train_dataloader()))
    assert x.shape == (9, 1) and y.shape == (9,)
    batches = list(loaded(batch_size=4).train_dataloader())
    assert [len(t_c) for _, t_c in batches] == [4, 4, 1]
    assert sorted(torch.cat([t_c for _, t_c in batches]).tolist()) == sorted(T_C[BOOK_TRAIN_ROWS].tolist())


def test_state_dict_restores_the_split():
    trained = loaded(split_seed=3)
    other = loaded(split_seed=4)
    assert not torch.equal(other.val_rows, trained.val_rows)
    other.load_state_dict(trained.state_dict())
    assert torch.equal(other.val_rows, trained.val_rows)
    assert torch.equal(other.val_targets, trained.val_targets)


def test_own_csv_with_several_inputs(tmp_path):
    csv = tmp_path / "sensors.csv"
    pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [5.0, 6, 7, 9], "note": list("wxyz"), "y": [0.0, 1, 2, 3]}).to_csv(
        csv, index=False
    )
    data = loaded(csv_path=csv, input_columns=["a", "b"], target_column="y", val_fraction=0)
    assert data.inputs.tolist() == [[1, 5], [2, 6], [3, 7], [4, 9]]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (None, {}, "no such file"),
        ("", {}, "empty"),
        ("t_u,temp\n1,2\n3,4\n", {}, "no column 't_c'; found ['t_u', 'temp']"),
        ("t_u,t_c\n1,2\n3,warm\n4,5\n", {}, "line 3, column 't_c': 'warm' is not a finite number"),
        ("t_u,t_c\n1,2\n3,\n4,5\n", {}, "line 3, column 't_c': blank or NaN is not a finite number"),
        ("t_u,t_c\n1,2\ninf,3\n4,5\n", {}, "line 3, column 't_u': inf is not a finite number"),
        ("t_u,t_c\n", {}, "a header line but no rows"),
        ("t_u,t_c\n1,2\n", {"val_fraction": 0}, "at least 2"),
        ("t_u,t_c\n1,2\n3,4\n5,6\n", {"val_fraction": 0.2}, "holds out 0; validation (and its R²) needs at least 2"),
        ("t_u,t_c\n" + "1,2\n" * 9, {"val_fraction": 0.2}, "at least 2/9"),
        ("t_u;t_c\n1;2\n3;4\n", {}, "found ['t_u;t_c']. One column found: the file must be comma-separated."),
        ("t_u,t_c,t_u\n1,2,3\n4,5,6\n", {}, "the header names 't_u' more than once; rename them."),
        (b"t_u,t_c\n\xff\xfe,1\n", {}, "cannot be read as a CSV ('utf-8' codec can't decode"),
        ("directory", {}, "bad.csv is a directory. Give a CSV file with --data.csv_path."),
    ],
    ids=lambda value: None,
)
def test_bad_csv_is_named_with_the_fix(tmp_path, text, kwargs, message):
    csv = tmp_path / "bad.csv"
    if text == "directory":
        csv.mkdir()
    elif isinstance(text, bytes):
        csv.write_bytes(text)
    elif text is not None:
        csv.write_text(text)
    with pytest.raises(UsageError, match=r"bad\.csv") as error:
        loaded(csv_path=csv, **kwargs)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"batch_size": 0}, "batch_size"),
        ({"input_columns": ["t_c"]}, "both an input and the target"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        TemperatureDataModule(**kwargs)
