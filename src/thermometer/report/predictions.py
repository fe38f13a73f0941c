"""`predict`: the readings and their predictions, written to `predictions.csv` in the checkpoint's run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from thermometer.run import atomic


class PredictionWriter(BasePredictionWriter):
    """`predict` writes `predictions.csv` into the checkpoint's run directory: the readings and the predictions.

    An existing file is never overwritten: the next free name (`predictions-2.csv`, ...) is taken.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        if not trainer.is_global_zero:
            return
        data = trainer.datamodule
        frame = data.predict_frame.copy()
        column = f"{data.target_column}_predicted"
        frame[column] = torch.cat(predictions).numpy()
        checkpoint = Path(trainer.ckpt_path)
        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
        for n in range(1, 10_000):
            path = run_dir / ("predictions.csv" if n == 1 else f"predictions-{n}.csv")
            try:
                atomic.create(path, lambda file: frame.to_csv(file, index=False))  # never over another's file
                break
            except FileExistsError:
                continue
        if len(frame) <= 20:
            print(frame.to_string(index=False, float_format="{:.6g}".format))
        shown = os.path.relpath(path)
        readings = f"{len(frame)} reading{'s' if len(frame) != 1 else ''}"
        print(f"Predictions:  {path if shown.startswith('..') else shown}   ({readings}; column {column})")
