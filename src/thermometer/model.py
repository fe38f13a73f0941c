"""The model `t_p = w * t_u + b` (or a polynomial in `t_u`) and the Lightning system that trains it."""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from thermometer.errors import UsageError

Normalization = Literal["none", "scale", "standardize"]


def polynomial_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """Columns `x, x**2, ..., x**degree` for each input column, powers outermost."""
    return torch.cat([x**power for power in range(1, degree + 1)], dim=1)


def feature_names(columns: Sequence[str], degree: int) -> list[str]:
    """`t_u`, `t_u^2`, ...: the name of each column of `polynomial_features`."""
    return [c if k == 1 else f"{c}^{k}" for k in range(1, degree + 1) for c in columns]


CHUNK_ROWS = 1_000_000
"""Rows converted to float64 at a time, so that millions of readings never need a float64 copy of them all."""


def least_squares(inputs: torch.Tensor, targets: torch.Tensor, degree: int = 1) -> tuple[torch.Tensor, float]:
    """The closed-form optimum of the mean squared error: raw-unit weight and bias, by `torch.linalg.lstsq`.

    Past `CHUNK_ROWS` rows, each chunk of `[features, 1, target]` is folded into the R of a running QR
    decomposition (tall-skinny QR), whose few rows give the same least-squares problem to solve.
    """
    system, chunks = None, range(0, len(targets), CHUNK_ROWS)
    for start in chunks:
        rows = slice(start, start + CHUNK_ROWS)
        features = polynomial_features(inputs[rows].double(), degree)
        ones = torch.ones(len(features), 1, dtype=torch.float64)
        chunk = torch.cat([features, ones, targets[rows].double()[:, None]], dim=1)
        system = chunk if system is None else torch.cat([system, chunk])
        if len(chunks) > 1:
            system = torch.linalg.qr(system).R
    design, target = system[:, :-1], system[:, -1:]
    solution = torch.linalg.lstsq(design, target, driver="gelsd").solution.ravel()
    return solution[:-1], solution[-1].item()


class Thermometer(nn.Module):
    """Converts raw readings to degrees Celsius: `t_p = weight @ features(normalized(t_u)) + bias`.

    Normalisation lives inside the model as buffers, `t_un = (t_u - center) * scale`, so a trained model takes
    raw readings and nothing else. `raw_parameters()` gives weight and bias in the units of the raw readings.

    Args:
        n_inputs: number of input columns.
        degree: highest power of each input; 1 is the book's line, 2 the chapter's exercise.
        normalize: `none` uses raw readings; `scale` multiplies them by `scale` (the book's `t_un = 0.1 * t_u`);
            `standardize` subtracts the training rows' mean and divides by their standard deviation.
        scale: the factor of `scale` normalisation.
        init_weight: starting value of every weight (the book starts from 1.0).
        init_bias: starting value of the bias (the book starts from 0.0).

    """

    def __init__(
        self,
        n_inputs: int = 1,
        degree: int = 1,
        normalize: Normalization = "none",
        scale: float = 0.1,
        init_weight: float = 1.0,
        init_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.degree, self.normalize, self.scale_factor = degree, normalize, scale
        self.weight = nn.Parameter(torch.full((n_inputs * degree,), float(init_weight)))
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))
        self.register_buffer("center", torch.zeros(n_inputs))
        self.register_buffer("scale", torch.full((n_inputs,), scale if normalize == "scale" else 1.0))

    @torch.no_grad()
    def fit_normalization(self, t_u: torch.Tensor) -> None:
        """Set `standardize` statistics from the training readings only (population std: unit variance)."""
        if self.normalize == "standardize":
            std = t_u.std(dim=0, correction=0)
            self.center.copy_(t_u.mean(dim=0))
            self.scale.copy_(torch.where(std > 0, 1 / std, torch.ones_like(std)))

    def normalized(self, t_u: torch.Tensor) -> torch.Tensor:
        """The readings as the weights see them: `t_un = (t_u - center) * scale`."""
        return (t_u - self.center) * self.scale

    def forward(self, t_u: torch.Tensor) -> torch.Tensor:
        return polynomial_features(self.normalized(t_u), self.degree) @ self.weight + self.bias

    @torch.no_grad()
    def raw_parameters(self) -> tuple[torch.Tensor, float]:
        """Weight and bias for raw readings, expanding each `(scale * (t_u - center))**k` binomially."""
        n_inputs = len(self.center)
        weight = self.weight.double().reshape(self.degree, n_inputs)
        scale, shift = self.scale.double(), -self.center.double()
        raw = torch.zeros_like(weight)
        bias = self.bias.double().clone()
        for k in range(1, self.degree + 1):
            term = weight[k - 1] * scale**k
            bias += (term * shift**k).sum()
            for i in range(1, k + 1):
                raw[i - 1] += term * comb(k, i) * shift ** (k - i)
        return raw.ravel(), bias.item()


class LitThermometer(L.LightningModule):
    """Learns a `Thermometer` by gradient descent on the mean squared error.

    Args:
        input_columns: names of the input columns (set from the data by the CLI), in the order the data gives them.
        degree: highest power of each input; 1 fits a line, 2 the chapter's `w2 * t_u**2 + w1 * t_u + b`.
        normalize: how the model normalises raw readings: `none`, `scale` or `standardize`.
        scale: the factor of `scale` normalisation (the book's 0.1).
        init_weight: starting value of every weight.
        init_bias: starting value of the bias.
        optimizer: any `torch.optim` optimizer, e.g. `--model.optimizer Adam --model.optimizer.lr 0.1`.

    """

    def __init__(
        self,
        input_columns: Sequence[str] = ("t_u",),
        degree: int = 1,
        normalize: Normalization = "standardize",
        scale: float = 0.1,
        init_weight: float = 1.0,
        init_bias: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.SGD,
    ) -> None:
        super().__init__()
        if degree < 1:
            raise UsageError(f"degree is {degree}; it must be 1 or more. Set --model.degree.")
        self.save_hyperparameters()
        self.input_columns = list(input_columns)
        self.thermometer = Thermometer(len(self.input_columns), degree, normalize, scale, init_weight, init_bias)
        self.optimizer = optimizer
        # The loss is the mean squared error, so torchmetrics' MSE over an epoch is that epoch's loss.
        metrics = MetricCollection({"loss": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()})
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    @property
    def feature_names(self) -> list[str]:
        """`t_u`, `t_u^2`, ...: the name of each raw-unit weight."""
        return feature_names(self.input_columns, self.thermometer.degree)

    @property
    def trained_feature_names(self) -> list[str]:
        """`t_un`, `t_un^2`, ...: the name of each weight in the units it trains on (the raw ones if not normalised)."""
        normalized = self.thermometer.normalize != "none"
        return feature_names([f"{c}n" if normalized else c for c in self.input_columns], self.thermometer.degree)

    @property
    def normalization(self) -> list[str]:
        """How each input is normalised before the weights see it: `t_un = 0.1 * t_u`, or nothing for raw readings."""
        model = self.thermometer
        if model.normalize == "none":
            return []
        if model.normalize == "scale":
            return [f"{c}n = {s:g} * {c}" for c, s in zip(self.input_columns, model.scale.tolist(), strict=True)]
        return [
            f"{c}n = ({c} - {m:.5g}) / {1 / s:.5g}"
            for c, m, s in zip(self.input_columns, model.center.tolist(), model.scale.tolist(), strict=True)
        ]

    def forward(self, t_u: torch.Tensor) -> torch.Tensor:
        return self.thermometer(t_u)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.thermometer.fit_normalization(self.trainer.datamodule.train_inputs)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: MetricCollection) -> torch.Tensor:
        t_u, t_c = batch
        t_p = self(t_u)
        loss = F.mse_loss(t_p, t_c)
        metrics.update(t_p, t_c)
        # For the progress bar, early stopping and checkpoints (and a checkpoint's evaluation table); while fitting,
        # the loggers get the whole epoch's metrics at its end.
        fitting = self.trainer.state.fn == TrainerFn.FITTING
        self.log(
            metrics.prefix + "loss",
            loss,
            logger=not fitting,
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=len(t_c),
            sync_dist=self.trainer.world_size > 1,  # each process sees its share of the rows
        )
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, self.test_metrics)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        t_u = batch[0]
        return self(t_u)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's metrics and what has been learned so far, in raw units: the book's `w` and `b`."""
        weight, bias = self.thermometer.raw_parameters()
        names = self.feature_names
        if len(names) == 1:
            learned = {"weight": weight.item()}
        else:
            learned = {f"weight/{name}": w for name, w in zip(names, weight.tolist(), strict=True)}
        self._log_epoch(self.train_metrics, {**learned, "bias": bias})

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics)

    def _log_epoch(self, metrics: MetricCollection, extra: dict[str, float] | None = None) -> None:
        """Log the epoch's metrics; while fitting, TensorBoard's step is the epoch, counted from 1 as the book does.

        While fitting they go straight to the loggers: `self.log` costs about half a millisecond a name, more than
        a training step here. An evaluation logs them the usual way, into Lightning's results table too.
        """
        if self.trainer.sanity_checking or not any(metric.update_count for metric in metrics.values()):
            metrics.reset()
            return
        values = {name: value.item() for name, value in metrics.compute().items()} | (extra or {})
        metrics.reset()
        if self.trainer.state.fn == TrainerFn.FITTING:
            for logger in self.loggers:
                logger.log_metrics(values, step=self.current_epoch + 1)
        else:  # the loss was logged by the step
            self.log_dict({name: value for name, value in values.items() if not name.endswith("/loss")})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())
