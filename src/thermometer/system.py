"""The Lightning system: raw readings -> `Normalize` -> any net -> Celsius, trained on the mean squared error."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from thermometer.errors import UsageError
from thermometer.metrics import RegressionMetrics
from thermometer.nets import Line

Normalization = Literal["none", "scale", "standardize"]


class Normalize(nn.Module):
    """`t_un = (t_u - center) * scale`, in front of any net; buffers, so that a checkpoint takes raw readings.

    Args:
        n_inputs: number of input columns.
        how: `none` passes raw readings; `scale` multiplies them by `scale` (the book's `t_un = 0.1 * t_u`);
            `standardize` subtracts the training rows' mean and divides by their standard deviation (`fit`).
        scale: the factor of `scale`.

    """

    def __init__(self, n_inputs: int = 1, how: Normalization = "none", scale: float = 0.1) -> None:
        super().__init__()
        self.how = how
        self.register_buffer("center", torch.zeros(n_inputs))
        self.register_buffer("scale", torch.full((n_inputs,), scale if how == "scale" else 1.0))

    @torch.no_grad()
    def fit(self, t_u: torch.Tensor) -> None:
        """Set the statistics of `standardize` from the training readings only (population std: unit variance)."""
        if self.how == "standardize":
            std = t_u.std(dim=0, correction=0)
            self.center.copy_(t_u.mean(dim=0))
            self.scale.copy_(torch.where(std > 0, 1 / std, torch.ones_like(std)))

    def forward(self, t_u: torch.Tensor) -> torch.Tensor:
        return (t_u - self.center) * self.scale

    def describe(self, columns: list[str]) -> list[str]:
        """How each input is normalised, `t_un = 0.1 * t_u`; nothing for raw readings."""
        if self.how == "none":
            return []
        pairs = zip(columns, self.center.tolist(), self.scale.tolist(), strict=True)
        if self.how == "scale":
            return [f"{c}n = {s:g} * {c}" for c, _, s in pairs]
        return [f"{c}n = ({c} - {m:.5g}) / {1 / s:.5g}" for c, m, s in pairs]


class Thermometer(L.LightningModule):
    """Learns to convert raw readings to degrees Celsius, `t_p = net(normalize(t_u))`, by descending the MSE.

    Args:
        net: any `nn.Module` from `(batch, n_inputs)` normalised readings to `(batch,)` or `(batch, 1)` predictions;
            the book's line `w * t_u + b` by default.
        n_inputs: number of input columns (set from the data by the CLI).
        normalize: how readings are normalised before the net sees them: `none`, `scale` or `standardize`.
        scale: the factor of `scale` normalisation (the book's 0.1).
        optimizer: any `torch.optim` optimizer, e.g. `--model.optimizer Adam --model.optimizer.lr 0.1`.

    """

    def __init__(
        self,
        net: nn.Module,
        n_inputs: int = 1,
        normalize: Normalization = "standardize",
        scale: float = 0.1,
        optimizer: OptimizerCallable = torch.optim.SGD,
    ) -> None:
        super().__init__()
        # The CLI hands over the net's class and arguments as data, which the checkpoint keeps; a net built in
        # Python is an object, which the checkpoint already holds as weights.
        from_python = _given_hyperparameters.get() is None
        self.save_hyperparameters(ignore=["net"] if from_python else None)
        self.net = net if net is not None else Line(n_inputs)
        self.normalize = Normalize(n_inputs, normalize, scale)
        self.optimizer = optimizer
        # The loss is the mean squared error, so the metrics' MSE over an epoch is that epoch's loss.
        self.train_metrics = RegressionMetrics("train/")
        self.val_metrics = RegressionMetrics("val/")
        self.test_metrics = RegressionMetrics("test/")

    def forward(self, t_u: torch.Tensor) -> torch.Tensor:
        t_p = self.net(self.normalize(t_u))
        return t_p.squeeze(-1) if t_p.ndim == 2 else t_p

    def check_net(self, n_inputs: int) -> None:
        """Refuse, in one message, a net that does not take `(batch, n_inputs)` or return one prediction a row."""
        name = f"--model.net {type(self.net).__name__}"
        try:
            with torch.no_grad():
                t_p = self(torch.zeros(3, n_inputs))
        except Exception as error:  # whatever the user's forward raises
            raise UsageError(f"{name}: its forward fails on a (3, {n_inputs}) batch of readings: {error}") from None
        if not isinstance(t_p, torch.Tensor) or t_p.shape != (3,):
            shape = tuple(t_p.shape) if isinstance(t_p, torch.Tensor) else type(t_p).__name__
            raise UsageError(f"{name}: returns {shape} for 3 rows; a net must return (batch,) or (batch, 1).")
        if not any(p.requires_grad for p in self.net.parameters()):
            raise UsageError(f"{name}: it has no parameters to learn; give a net with weights, e.g. --model.net MLP.")
        if not all(torch.isfinite(p).all() for p in self.net.parameters()):
            raise UsageError(f"{name}: its initial weights are not all finite numbers; float32 holds up to ±3.4e38.")

    def setup(self, stage: str) -> None:
        self.check_net(self.normalize.center.numel())
        if stage == "fit":
            self.normalize.fit(self.trainer.datamodule.train_inputs)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: RegressionMetrics) -> torch.Tensor:
        t_u, t_c = batch
        t_p = self(t_u)
        loss = F.mse_loss(t_p, t_c)
        metrics.update(t_p, t_c)
        if self.trainer.state.fn != TrainerFn.FITTING:  # an evaluation's table on the console is made of these
            self.log(
                metrics.prefix + "loss",
                loss,
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

    def on_train_batch_end(
        self, outputs: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> None:
        # At the epoch's last batch, before the validation and the callbacks that read the epoch's training loss.
        if self.trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._log_epoch(self.train_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics)

    def _log_epoch(self, metrics: RegressionMetrics) -> None:
        """Log the epoch's metrics; while fitting, TensorBoard's step is the epoch, counted from 1 as the book does.

        While fitting they go straight to the loggers, and the loss straight to where early stopping, the
        checkpoints and the progress bar read it, as `self.log` would put it at the epoch's end: `self.log` costs
        about half a millisecond a call, more than a training step here. torchmetrics has already reduced them
        over the processes. An evaluation logs them the usual way, into Lightning's results table too.
        """
        if self.trainer.sanity_checking or not metrics.update_count:
            metrics.reset()
            return
        values = metrics.compute()
        metrics.reset()
        if self.trainer.state.fn == TrainerFn.FITTING:
            loss = metrics.prefix + "loss"
            self.trainer.callback_metrics[loss] = torch.tensor(values[loss])
            self.trainer.progress_bar_metrics[loss] = values[loss]
            for logger in self.loggers:
                logger.log_metrics(values, step=self.current_epoch + 1)
        else:  # the loss was logged by the step; the evaluation's table on the console is printed from these
            self.log_dict({name: value for name, value in values.items() if not name.endswith("/loss")})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())

    def on_train_start(self) -> None:
        # A resumed run restored its optimizer's arguments from the checkpoint; those configured now take over
        # (`fit --ckpt_path ... --model.optimizer.lr 0.05`). Its state (momentum, Adam's averages) stays.
        configured = self.optimizer(self.parameters())
        for optimizer in self.trainer.optimizers:
            for group, wanted in zip(optimizer.param_groups, configured.param_groups, strict=True):
                group.update({key: value for key, value in wanted.items() if key != "params"})
