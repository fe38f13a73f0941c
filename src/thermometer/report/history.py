"""What happened each epoch: the losses, kept for the diagnoses and the summary, and the parameters, for TensorBoard."""

from __future__ import annotations

from typing import Any

import lightning as L

from thermometer.linear import LinearFit, linear_fit, parameter_vector

LOSSES = ("train/loss", "val/loss")
PARAMETERS = "weights"
"""TensorBoard's group of the weight and bias: after `train/` and `val/`, so that the losses come first."""


class History(L.Callback):
    """Each epoch's `train/loss` and `val/loss` by epoch (counted from 1), saved in `last.ckpt` for a resumed run.

    For a net linear in its parameters it also logs the weight and bias to TensorBoard, in the units of the raw
    readings where the net can say them so (`weights/weight`, `weights/bias`).
    """

    def __init__(self) -> None:
        self.losses: dict[str, dict[int, float]] = {name: {} for name in LOSSES}
        self.fit: LinearFit | None = None
        self.looked = False
        self.names: list[str] = []

    def linear(self, trainer: L.Trainer, pl_module: Any) -> LinearFit | None:
        """The net as linear in its parameters, or None: worked out once a run, at its start, for every report."""
        if not self.looked:
            data = trainer.datamodule
            self.fit = linear_fit(pl_module.net, pl_module.normalize, data.train_inputs, data.train_targets)
            self.looked = True
        return self.fit

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.fit, self.looked = None, False

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        data = trainer.datamodule
        if self.linear(trainer, pl_module) is not None:
            columns = data.input_columns if self.fit.raw_map is not None else [f"{c}n" for c in data.input_columns]
            names = self.fit.names(columns)
            self.names = [f"{PARAMETERS}/weight"] if len(names) == 1 else [f"{PARAMETERS}/weight/{n}" for n in names]
            self.names.append(f"{PARAMETERS}/bias")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        epoch, metrics = trainer.current_epoch + 1, trainer.callback_metrics
        for name in LOSSES:
            if name in metrics:
                self.losses[name][epoch] = metrics[name].item()
        if self.fit is not None and trainer.loggers:
            values = dict(zip(self.names, self.fit.raw_vector(parameter_vector(pl_module.net)).tolist(), strict=True))
            for logger in trainer.loggers:
                logger.log_metrics(values, step=epoch)

    @property
    def train(self) -> dict[int, float]:
        return self.losses["train/loss"]

    @property
    def val(self) -> dict[int, float]:
        return self.losses["val/loss"]

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.losses = state_dict["losses"]
