import pandas as pd
import pytest
import torch

from tests.book import BOOK_TRAIN_ROWS, BOOK_VAL_ROWS, T_C, T_U
from thermometer.data import TemperatureDataModule


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
