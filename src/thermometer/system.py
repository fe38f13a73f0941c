"""The Lightning system: raw readings -> `Normalize` -> any net -> Celsius, by any loss, watched by any metrics."""

from __future__ import annotations

import copy
import random
import warnings
from typing import Literal

import lightning as L
import numpy as np
import torch
from jsonargparse import lazy_instance
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torchmetrics import MeanAbsoluteError, Metric, MetricCollection, R2Score

from thermometer.gradients import Gradient, analytic, finite_difference
from thermometer.net_checks import check_net

Normalization = Literal["none", "scale", "standardize"]
MEAN_SQUARED_ERROR = lazy_instance(nn.MSELoss)
"""The book's loss, the default: stateless, so one instance serves every system."""


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
    """Learns to convert raw readings to degrees Celsius: `t_p = net(normalize(t_u))`, `loss = loss_fn(t_p, t_c)`.

    What it minimises is what it logs as `train/loss` and `val/loss` (`test/loss`), and what early stopping, the
    best checkpoint and the summary watch; each metric is logged beside it as `train/<Metric>`, `val/<Metric>`.

    Args:
        net: any `nn.Module` from `(batch, n_inputs)` normalised readings to `(batch,)` or `(batch, 1)` predictions;
            from the command line, the book's line `w * t_u + b` by default.
        loss: any loss module taking `(t_p, t_c)`; the book's mean squared error, `MSELoss`, by default; e.g.
            `--model.loss L1Loss` for the mean absolute error of section 5.3.
        metrics: torchmetrics to log beside the loss; by default the mean absolute error and R².
        n_inputs: number of input columns (set from the data by the CLI).
        normalize: how readings are normalised before the net sees them: `none`, `scale` or `standardize`.
        scale: the factor of `scale` normalisation (the book's 0.1).
        optimizer: any `torch.optim` optimizer, e.g. `--model.optimizer Adam --model.optimizer.lr 0.1`.
        gradient: how the gradient of each step is computed: by `autograd` (`loss.backward()`), by the chapter's
            hand derivation (`analytic`: nets linear in their parameters, with MSELoss or L1Loss), or by its
            central differences (`finite_difference`: any net and loss, two forward passes per parameter). The
            optimizer steps with it in every case.
        delta: the step `δ` of `finite_difference`, the book's 0.1.

    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module = MEAN_SQUARED_ERROR,
        metrics: list[Metric] | None = None,
        n_inputs: int = 1,
        normalize: Normalization = "standardize",
        scale: float = 0.1,
        optimizer: OptimizerCallable = torch.optim.SGD,
        gradient: Gradient = "autograd",
        delta: float = 0.1,
    ) -> None:
        super().__init__()
        # From the CLI the modules' hyperparameters are their class paths and arguments, which a checkpoint keeps;
        # built in Python they are objects, which a weights-only checkpoint cannot hold (their weights are kept).
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r"Attribute '\w+' is an instance of `nn.Module`", category=UserWarning
            )
            self.save_hyperparameters()
        self.remove_ignored_hparams([name for name, value in self.hparams.items() if holds_modules(value)])
        self.net = net
        self.loss_fn = loss
        self.normalize = Normalize(n_inputs, normalize, scale)
        self.optimizer = optimizer
        self.gradient, self.delta = gradient, delta
        # By hand, the gradient is set and the optimizer stepped in `training_step` (Lightning's manual optimization).
        self.automatic_optimization = gradient == "autograd"
        metrics = MetricCollection(list(metrics) if metrics is not None else [MeanAbsoluteError(), R2Score()])
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, t_u: torch.Tensor) -> torch.Tensor:
        # One prediction a row, whatever shape holds them: (batch, 1), or `.squeeze()`'s 0-d tensor for one row;
        # in the readings' type, whatever floating-point type the net computes in (bfloat16 has no numpy).
        return self.net(self.normalize(t_u)).reshape(len(t_u)).to(t_u.dtype)

    def setup(self, stage: str) -> None:
        check_net(self, self.normalize.center.numel())
        if stage == "fit":
            self.normalize.fit(self.trainer.datamodule.train_inputs)

    def step(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: MetricCollection) -> torch.Tensor:
        """The book's step: `t_p = model(t_u)`, `loss = loss_fn(t_p, t_c)`, logged with the metrics for the epoch."""
        t_u, t_c = batch
        t_p = self(t_u)
        loss = self.loss_fn(t_p, t_c)
        metrics.update(t_p, t_c)
        stage = metrics.prefix
        # Each process sees its share of the rows; the metrics reduce over processes themselves.
        options = {"on_step": False, "on_epoch": True, "batch_size": len(t_c), "sync_dist": self.trainer.world_size > 1}
        self.log(f"{stage}loss", loss, prog_bar=True, **options)
        return loss

    def log_metrics(self, metrics: MetricCollection) -> None:
        """The epoch's metrics, computed over every batch (and process) since the last, then reset.

        Computed here and logged as numbers: Lightning logging the `Metric` objects themselves costs more than the
        eleven readings' whole epoch.
        """
        if any(metric.update_count for metric in metrics.values()):
            # Already the same in every process (the metrics reduce themselves): sync_dist only tells Lightning so.
            self.log_dict(metrics.compute(), on_step=False, on_epoch=True, sync_dist=self.trainer.world_size > 1)
        metrics.reset()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.automatic_optimization:  # Lightning calls zero_grad, loss.backward() and step around this
            return self.step(batch, self.train_metrics)
        optimizer = self.optimizers()
        with torch.no_grad():
            loss = self.step(batch, self.train_metrics)
        optimizer.zero_grad()
        t_u, t_c = batch
        if self.gradient == "analytic":
            parameters = [self.net.weight, self.net.bias]
            with torch.no_grad():
                gradients = analytic(self.net, self.normalize(t_u), t_c, self.loss_fn)
        else:  # in float64, so that only the difference's own error separates it from the derivative
            model = copy.deepcopy(nn.Sequential(self.normalize, self.net)).double()
            loss_fn, t_u, t_c = copy.deepcopy(self.loss_fn).double(), t_u.double(), t_c.double()
            seed = int(torch.randint(2**62, ()))  # one dropout mask for every evaluation of this step's loss

            def masked_loss() -> torch.Tensor:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    return loss_fn(model(t_u).reshape(t_c.shape), t_c)

            learning = [p.requires_grad for p in self.net.parameters()]
            copied = [p for p, learns in zip(model[1].parameters(), learning, strict=True) if learns]
            gradients = finite_difference(masked_loss, copied, self.delta)
            parameters = [p for p in self.net.parameters() if p.requires_grad]
        for parameter, gradient in zip(parameters, gradients, strict=True):
            if parameter.requires_grad:  # a frozen weight stays as it is, as with autograd
                parameter.grad = gradient.reshape(parameter.shape).to(parameter.dtype)
        optimizer.step()
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.step(batch, self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.step(batch, self.test_metrics)

    def on_train_epoch_end(self) -> None:
        self.log_metrics(self.train_metrics)

    def on_validation_epoch_end(self) -> None:
        self.log_metrics(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self.log_metrics(self.test_metrics)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        t_u = batch[0]
        return self(t_u)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Every generator a run draws from (dropout, a user's net), so that a resumed run draws what the
        # uninterrupted one would have: Lightning's checkpoint keeps none of them. Plain lists: loaded weights-only.
        # Only in a checkpoint to resume from (with the optimizer's state), not in each new best's weights.
        if "optimizer_states" not in checkpoint:
            return
        numpy_state = np.random.get_state()
        checkpoint["random_state"] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("random_state")
        if state is not None and self.trainer.state.fn == "fit":  # an evaluation draws nothing
            torch.set_rng_state(state["torch"])
            random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
            name, keys, *rest = state["numpy"]
            np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))

    def on_train_start(self) -> None:
        # A resumed run restored its optimizer's arguments from the checkpoint; those configured now take over
        # (`fit --ckpt_path ... --model.optimizer.lr 0.05`). Its state (momentum, Adam's averages) stays.
        configured = self.optimizer(self.parameters())
        for optimizer in self.trainer.optimizers:
            for group, wanted in zip(optimizer.param_groups, configured.param_groups, strict=True):
                group.update({key: value for key, value in wanted.items() if key != "params"})


def holds_modules(value: object) -> bool:
    """Whether a hyperparameter is a module, or a list of them (metrics), rather than a description of one."""
    values = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(v, nn.Module) for v in values)
