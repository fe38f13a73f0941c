"""The thermometer readings: load and validate a CSV, split it, serve batches."""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from thermometer.data.batches import FULL_BATCH_ROWS, Readings, RowBatches
from thermometer.data.readings import read_readings
from thermometer.errors import UsageError
from thermometer.linear import best_line

BOOK_READINGS = resources.files("thermometer") / "readings.csv"
"""The chapter's eleven readings: unknown units `t_u` and Celsius `t_c`."""
RESOLVED = 1e-5
"""An input must span this share of its magnitude: float32 then still tells about a hundred readings apart."""
SQUARE_MAX = 1e18
"""Largest target magnitude: its square, 1e36, is still within float32's 3.4e38."""
BIG_DATA_BATCH = 262_144
"""Rows a step by default beyond that: big enough to keep a CPU busy, small enough for many steps an epoch."""


class TemperatureDataModule(L.LightningDataModule):
    """Thermometer readings from a CSV, split by a seeded permutation into training and validation rows.

    Args:
        csv_path: CSV file with a header; default: the book's eleven readings.
        input_columns: the reading columns the model takes (the book's `t_u`).
        target_column: the column to predict (the book's `t_c`, degrees Celsius).
        val_fraction: share of rows held out for validation, `int(val_fraction * rows)` of them, as the book
            counts; 0 trains on every row with no validation.
        split_seed: seed of the permutation that splits the rows; 149 with 0.2 gives the book's split
            (training rows [9, 6, 5, 8, 4, 7, 0, 1, 3], validation rows [2, 10]).
        batch_size: rows per training step; default: all training rows in one batch, as the book does.
        predict_path: `predict` converts the readings of this CSV (the input columns; no target needed).
        predict_readings: `predict` converts these readings of the one input column, e.g. `[35.7, 100]`.
            With neither, `predict` converts the readings of `csv_path`.

    """

    def __init__(
        self,
        csv_path: Path | str | None = None,
        input_columns: Sequence[str] = ("t_u",),
        target_column: str = "t_c",
        val_fraction: float = 0.2,
        split_seed: int = 149,
        batch_size: int | None = None,
        predict_path: Path | str | None = None,
        predict_readings: list[float] | None = None,
    ) -> None:
        super().__init__()
        if not input_columns:
            raise UsageError("--data.input_columns is empty: name the reading columns, e.g. [t_u].")
        if not 0 <= val_fraction < 1:
            raise UsageError(f"val_fraction is {val_fraction}; it must be in [0, 1). Set --data.val_fraction.")
        if batch_size is not None and batch_size < 1:
            raise UsageError(f"batch_size is {batch_size}; it must be 1 or more. Set --data.batch_size.")
        if target_column in input_columns:
            raise UsageError(f"{target_column!r} is both an input and the target column; choose one role for it.")
        if twice := sorted({c for c in input_columns if list(input_columns).count(c) > 1}):
            raise UsageError(f"--data.input_columns names {', '.join(map(repr, twice))} twice; give each column once.")
        self.csv_path = Path(csv_path) if csv_path is not None else None  # as given: messages name it so
        if csv_path is not None:  # absolute in the checkpoint: a resume may start from another directory
            csv_path = str(Path(csv_path).resolve())
        self.save_hyperparameters()
        self.input_columns = list(input_columns)
        self.target_column = target_column
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.batch_size = batch_size
        if predict_path is not None and predict_readings is not None:
            raise UsageError("give either --data.predict_path or --data.predict_readings, not both.")
        if predict_readings is not None and len(self.input_columns) != 1:
            raise UsageError(
                f"--data.predict_readings are readings of one column, but the inputs are {self.input_columns}: "
                "put them in a CSV with those columns and give --data.predict_path."
            )
        if predict_readings is not None and not predict_readings:
            raise UsageError('--data.predict_readings is empty: give readings, e.g. "[35.7, 100]".')
        self.predict_path = Path(predict_path) if predict_path is not None else None
        self.predict_readings = predict_readings
        self.predict_frame: pd.DataFrame | None = None
        self.inputs: torch.Tensor | None = None
        self.targets: torch.Tensor | None = None
        self.n_train = 0  # the first n_train rows of inputs and targets are the training rows, once loaded
        self.line: tuple[torch.Tensor, float] | None = None

    def setup(self, stage: str) -> None:
        if stage != "predict":  # predicting needs only the readings to convert
            self.load()

    def load(self) -> None:
        """Read and check the CSV once, and keep its rows split: the training rows first, then the validation rows.

        Each set is then a slice, so a batch in order is a view and a shuffled one a single `index_select`.
        """
        if self.inputs is not None:
            return
        with resources.as_file(BOOK_READINGS) as bundled:
            frame = read_readings(self.csv_path or bundled, self.input_columns, self.target_column)
        order, self.n_train = self.split(len(frame))
        # Column by column, each dropped from the frame once taken in that order: at most one more column at a time.
        # index_select takes the int32 row numbers as they are (numpy's take would copy them to int64 first).
        columns = [*self.input_columns, self.target_column]
        with warnings.catch_warnings():  # pandas' arrays are read-only views (copy on write); they are only read
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
            taken = [torch.from_numpy(frame.pop(c).to_numpy()).index_select(0, order) for c in columns]
        self.inputs = taken[0][:, None] if len(columns) == 2 else torch.stack(taken[:-1], dim=1)
        self.targets = taken[-1]
        del frame
        self.check_learnable()
        if self.batch_size is None and self.n_train > FULL_BATCH_ROWS:
            self.batch_size = BIG_DATA_BATCH
            if rank_zero_only.rank == 0:
                print(
                    f"Batches:      {BIG_DATA_BATCH} rows a step: {self.n_train} training rows are more than one "
                    f"batch should hold ({FULL_BATCH_ROWS}); --data.batch_size sets another size."
                )

    def check_learnable(self) -> None:
        """Refuse readings nothing can be learned from: a constant input, or targets whose squares overflow float32."""
        low, high = self.train_inputs.amin(dim=0), self.train_inputs.amax(dim=0)
        for column, lowest, highest in zip(self.input_columns, low.tolist(), high.tolist(), strict=True):
            if lowest != highest and highest - lowest < RESOLVED * max(abs(lowest), abs(highest)):
                raise UsageError(
                    f"{self.source}: column {column!r} spans only {highest - lowest:.3g} around {highest:.7g}: "
                    "float32, the readings' type, keeps about 7 digits, too few to tell its readings apart. "
                    f"Subtract an offset in the CSV (e.g. {column} - {lowest:.7g})."
                )
            if lowest == highest:
                raise UsageError(
                    f"{self.source}: column {column!r} is {lowest:g} in every training row: nothing can be learned "
                    "from it. Leave it out of --data.input_columns."
                )
        largest = max(abs(bound) for bound in torch.aminmax(self.targets)).item()  # no copy of the targets
        if largest > SQUARE_MAX:
            raise UsageError(
                f"{self.source}: column {self.target_column!r} reaches {largest:.3g}; its squared errors would "
                f"overflow float32 (above {SQUARE_MAX:.1g}). Rescale it, e.g. to other units."
            )

    def split(self, rows: int) -> tuple[torch.Tensor, int]:
        """The row numbers in a seeded permutation, and how many of them, the training rows, lead it.

        The rest, the last `int(val_fraction * rows)`, are validation's. Without validation rows, the rows in order
        (or permuted, past `FULL_BATCH_ROWS`). int32: half the memory of int64 for millions of rows, and the same
        permutation.
        """
        n_val = int(self.val_fraction * rows)
        if self.val_fraction > 0 and n_val < 2 and rows < 4:
            raise UsageError(
                f"{self.source}: {rows} row(s) cannot be split: validation needs 2 and training 2. Train on all of "
                "them with --data.val_fraction 0."
            )
        if self.val_fraction > 0 and n_val < 2:
            raise UsageError(
                f"{self.source}: val_fraction {self.val_fraction} of {rows} rows holds out {n_val}; validation "
                f"(and its R²) needs at least 2: set --data.val_fraction to at least 2/{rows}, or to 0 for none."
            )
        if n_val == 0 and rows < 2:
            raise UsageError(f"{self.source}: {rows} row(s); a line needs at least 2 readings.")
        if n_val == 0 and rows <= FULL_BATCH_ROWS:  # in the file's order; more are shuffled once (RowBatches)
            return torch.arange(rows, dtype=torch.int32), rows
        if rows - n_val < 2:
            raise UsageError(
                f"{self.source}: {rows} rows leave {rows - n_val} for training with val_fraction "
                f"{self.val_fraction}; a line needs at least 2. Lower --data.val_fraction or add rows."
            )
        seeded = torch.Generator().manual_seed(self.split_seed)
        return torch.randperm(rows, generator=seeded, dtype=torch.int32), rows - n_val

    def best_line(self) -> tuple[torch.Tensor, float]:
        """The least-squares straight line of the training rows, raw-unit weight and bias: solved once."""
        if self.line is None:
            self.line = best_line(self.train_inputs, self.train_targets)
        return self.line

    @property
    def source(self) -> str:
        """Where the readings come from, for messages."""
        return str(self.csv_path) if self.csv_path else "the book's readings"

    @property
    def train_inputs(self) -> torch.Tensor:
        return self.inputs[: self.n_train]

    @property
    def train_targets(self) -> torch.Tensor:
        return self.targets[: self.n_train]

    @property
    def val_inputs(self) -> torch.Tensor:
        return self.inputs[self.n_train :]

    @property
    def val_targets(self) -> torch.Tensor:
        return self.targets[self.n_train :]

    def _loader(self, inputs: torch.Tensor, targets: torch.Tensor, shuffle: bool) -> DataLoader:
        batches = RowBatches(len(targets), self.batch_size or len(targets), shuffle)
        # batch_size=None: each sampled "item" is already a whole batch of rows.
        return DataLoader(Readings(inputs, targets), sampler=batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_inputs, self.train_targets, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val_targets):
            return self._loader(self.val_inputs, self.val_targets, shuffle=False)
        if self.trainer is not None and self.trainer.state.fn == "validate":
            raise UsageError("this model was trained with val_fraction 0: no rows were held out to validate on.")
        return []  # fit without validation: early stopping watches the training loss

    def test_dataloader(self) -> DataLoader:
        """`test` evaluates the held-out rows under `test/...` names: eleven readings leave no third set."""
        if not len(self.val_targets):
            raise UsageError("val_fraction is 0: no rows were held out to test on; train with --data.val_fraction > 0.")
        return self._loader(self.val_inputs, self.val_targets, shuffle=False)

    def load_predict(self) -> None:
        """Read and check the readings `predict` converts: `predict_readings`, `predict_path`, or `csv_path`'s."""
        if self.predict_frame is not None:
            return
        if self.predict_readings is not None:
            with warnings.catch_warnings():  # a reading beyond float32 becomes inf, which is said next
                warnings.filterwarnings("ignore", message="overflow encountered in cast", category=RuntimeWarning)
                frame = pd.DataFrame({self.input_columns[0]: self.predict_readings}, dtype="float32")
            if not np.isfinite(frame.to_numpy()).all():
                raise UsageError(f"--data.predict_readings {self.predict_readings}: every reading must be finite.")
        elif self.predict_path is not None:
            frame = read_readings(self.predict_path, self.input_columns, None, "--data.predict_path")
        else:
            with resources.as_file(BOOK_READINGS) as bundled:
                frame = read_readings(self.csv_path or bundled, self.input_columns, None)
        self.predict_frame = frame

    def predict_dataloader(self) -> DataLoader:
        """The readings `predict` converts (see `load_predict`), in their order, in batches of `batch_size`."""
        self.load_predict()
        readings = Readings(torch.tensor(self.predict_frame[self.input_columns].to_numpy()))
        batches = RowBatches(len(readings), self.batch_size or len(readings), shuffle=False)
        return DataLoader(readings, sampler=batches, batch_size=None)

    def state_dict(self) -> dict[str, Any]:
        """How the rows were split (the seed and share say it exactly) and a fingerprint of the training rows."""
        split = {"rows": len(self.targets), "val_fraction": self.val_fraction, "split_seed": self.split_seed}
        return {**split, "training_rows": self.fingerprint}

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the training rows' values: a CSV changed since a checkpoint was made is told apart."""
        rows = hashlib.sha256(self.train_inputs.numpy().tobytes())
        rows.update(self.train_targets.numpy().tobytes())
        return rows.hexdigest()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        trained = (state_dict["rows"], state_dict.get("val_fraction"), state_dict.get("split_seed"))
        if self.targets is not None and trained != (len(self.targets), self.val_fraction, self.split_seed):
            raise UsageError(
                f"the checkpoint was trained on {trained[0]} rows split with val_fraction {trained[1]} and split_seed "
                f"{trained[2]}, but {self.source} has {len(self.targets)} rows, split with {self.val_fraction} and "
                f"{self.split_seed}; evaluate it on the data it was trained on."
            )
        fingerprint = state_dict.get("training_rows")
        if self.targets is not None and fingerprint not in (None, self.fingerprint):
            raise UsageError(
                f"{self.source}: its training rows are not those the checkpoint was trained on (their values changed "
                "since); resume or evaluate on the same readings, or start a new run."
            )
