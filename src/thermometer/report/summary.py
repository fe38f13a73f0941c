"""The run's summary at the end of `fit`: what was learned and how well, as `metrics.json` and on the console.

It observes and never changes what is learned. Every net gets its losses, the best epoch, why it stopped, the
diagnoses and the best straight line on the same rows as a baseline; a net linear in its parameters also gets its
equation in raw units and the gap to its closed-form optimum (`History.linear` decides which).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from torch import nn

from thermometer.linear import (
    LinearFit,
    learning_rate_limit,
    line,
    mean_squared_error,
    suggested_learning_rate,
    trained_parameters,
)
from thermometer.report import diagnosis
from thermometer.report.console import print_summary
from thermometer.report.history import History
from thermometer.run import atomic
from thermometer.run.logger import choices
from thermometer.run.stop import GracefulStop


def finite_or_none(value: Any) -> Any:
    """JSON has no inf or NaN: such numbers become null, in lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value


def stop_reason(trainer: L.Trainer, stopping: EarlyStopping) -> str:
    """Why `fit` ended, in words (divergence and signals aside).

    A callback of the user's that stops a run says why in its `stopped_because` (a sweep's pruning does).
    """
    for callback in trainer.callbacks:
        if because := getattr(callback, "stopped_because", None):
            return because
    if stopping.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
        change = f"improved by less than {abs(stopping.min_delta):g}" if stopping.min_delta else "did not improve"
        return f"early stopping: {stopping.monitor} {change} in {stopping.patience} epochs"
    if stopping.stopping_reason_message:
        return f"early stopping: {stopping.stopping_reason_message}"
    if 0 <= trainer.max_steps <= trainer.global_step:
        return f"max_steps={trainer.max_steps} reached"
    if trainer.max_epochs is not None and trainer.current_epoch >= trainer.max_epochs:
        return f"max_epochs={trainer.max_epochs} reached"
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is not None and (timer.time_remaining() or 0) <= 0:
        return f"max_time reached after {timer.time_elapsed():.3g} s of training"
    return "training stopped"


def float64(pl_module: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The system's normalisation and net as one float64 module from raw readings to predictions, for exact losses."""
    model = copy.deepcopy(nn.Sequential(pl_module.normalize, pl_module.net)).double()
    return lambda t_u: model(t_u).reshape(len(t_u))


def equation(weight: list[float], bias: float, names: list[str], target: str) -> str:
    """`t_c = 0.53677 * t_u - 17.305`."""
    terms = [f"{w:.5g} * {name}" for w, name in zip(weight, names, strict=True)] + [f"{bias:.5g}"]
    return f"{target} = " + " + ".join(terms).replace("+ -", "- ")


def linear_summary(fit: LinearFit, pl_module: Any, data: Any, rows: dict[str, tuple]) -> dict[str, Any]:
    """The equation in raw units, as trained, and the closed-form optimum of the net's own family."""
    net, target = pl_module.net, data.target_column
    weight, bias = trained_parameters(net)
    normalized = pl_module.normalize.how != "none"
    trained_names = fit.names([f"{c}n" if normalized else c for c in data.input_columns])
    raw_names = fit.names(data.input_columns)
    best_weight, best_bias = fit.optimum
    raw, raw_best = fit.raw(weight, bias), fit.raw(best_weight, best_bias)

    def predict(weight: torch.Tensor, bias: float) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda t_u: fit.features(t_u) @ weight + bias

    return {
        "equation": equation(raw[0].tolist(), raw[1], raw_names, target) if raw else None,
        "features": raw_names if raw else None,
        "weight": raw[0].tolist() if raw else None,
        "bias": raw[1] if raw else None,
        "trained": {
            "normalization": pl_module.normalize.describe(data.input_columns),
            "features": trained_names,
            "weight": weight.tolist(),
            "bias": bias,
            "equation": equation(weight.tolist(), bias, trained_names, target),
        },
        "optimum": {
            "equation": equation(raw_best[0].tolist(), raw_best[1], raw_names, target)
            if raw_best
            else equation(best_weight.tolist(), best_bias, trained_names, target),
            "weight": raw_best[0].tolist() if raw_best else None,
            "bias": raw_best[1] if raw_best else None,
            **{f"{s}_loss": mean_squared_error(predict(best_weight, best_bias), *xy) for s, xy in rows.items()},
        },
    }


def step_size_limit(fit: LinearFit | None, optimizer: torch.optim.Optimizer, full_batch: bool) -> dict[str, float]:
    """The largest stable learning rate, `2/λ_max`, and the valley's condition number, where theory gives them exactly.

    Only for plain gradient descent (SGD without momentum, one batch an epoch) on a net linear in its parameters:
    for momentum, Adam, mini-batches or other nets the bound is different or unknown, and nothing is said.
    """
    groups = optimizer.param_groups
    plain = type(optimizer) is torch.optim.SGD and all(
        not g["momentum"] and not g["nesterov"] and not g["maximize"] for g in groups
    )
    decays = {g.get("weight_decay", 0.0) for g in groups}  # LBFGS and Rprop have none
    if fit is None or fit.curvature is None or not plain or not full_batch or len(decays) != 1:
        return {"stable_lr": None, "condition_number": None, "suggested_lr": None}
    [decay] = decays
    stable, condition = learning_rate_limit(fit.curvature, decay)
    suggested = suggested_learning_rate(fit.curvature, decay)
    return {"stable_lr": stable, "condition_number": condition, "suggested_lr": suggested}


NUMBERS = ("train_loss", "val_loss", "best_loss", "best_epoch", "epochs", "bias", "lr", "stable_lr", "suggested_lr")
"""The keys of `metrics.json` whose values are single numbers (null where they do not apply): a sweep's objectives."""


def summarize(trainer: L.Trainer, pl_module: Any) -> dict[str, Any]:
    """Everything `metrics.json` holds; a key that does not apply to this net is null."""
    data = trainer.datamodule
    history = next(c for c in trainer.callbacks if isinstance(c, History))
    stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    best = next(c for c in trainer.checkpoint_callbacks if c.monitor)
    last = next(c for c in trainer.checkpoint_callbacks if c.save_last)
    signal = next((c.interrupted for c in trainer.callbacks if isinstance(c, GracefulStop) and c.interrupted), None)
    rows = {"train": (data.train_inputs, data.train_targets), "val": (data.val_inputs, data.val_targets)}
    losses = {f"{s}_loss": mean_squared_error(float64(pl_module), *xy) for s, xy in rows.items()}
    line_weight, line_bias = data.best_line()
    fit = history.linear(trainer, pl_module)
    linear = linear_summary(fit, pl_module, data, rows) if fit else {}
    optimizer = trainer.optimizers[0]
    lr = optimizer.param_groups[0]["lr"]

    limit = step_size_limit(fit, optimizer, trainer.num_training_batches == 1)
    diverged = diagnosis.divergence(history.losses)
    baseline = mean_squared_error(line(line_weight, line_bias), *rows["train"])
    overfitting = diagnosis.overfitting(history.train, history.val, baseline) if not diverged else None
    not_converged = None
    if not (diverged or signal or overfitting):
        optimum_loss = linear["optimum"]["train_loss"] if linear else None
        not_converged = diagnosis.not_converged(history.train, losses["train_loss"], optimum_loss, baseline)
    stopped = f"diverged: {diverged.split(' (')[0]}" if diverged else stop_reason(trainer, stopping)
    if signal and not diverged:
        stopped = f"interrupted by {signal.name}"
    how = {"optimizer": type(optimizer).__name__, "lr": lr, "normalize": pl_module.normalize.how}
    monitored = history.losses[best.monitor]
    return {
        "net": f"{type(pl_module.net).__module__}.{type(pl_module.net).__qualname__}",
        "equation": linear.get("equation"),
        "features": linear.get("features"),
        "target": data.target_column,
        "weight": linear.get("weight"),
        "bias": linear.get("bias"),
        **losses,
        "trained": linear.get("trained"),
        "last_epoch": {name: curve[max(curve)] for name, curve in history.losses.items() if curve},
        "closed_form": {  # the best straight line in the raw readings: every net's baseline
            "equation": equation(line_weight.tolist(), line_bias, list(data.input_columns), data.target_column),
            "weight": line_weight.tolist(),
            "bias": line_bias,
            **{f"{s}_loss": mean_squared_error(line(line_weight, line_bias), *xy) for s, xy in rows.items()},
        },
        "optimum": linear.get("optimum"),
        "epochs": trainer.current_epoch,
        "stop_reason": stopped,
        "optimizer": how["optimizer"],
        "lr": lr,
        **limit,
        "diverged": f"training diverged: {diverged}. {diagnosis.cure(**how, **limit)}" if diverged else None,
        "interrupted": signal.name if signal else None,
        "overfitting": overfitting,
        "not_converged": (
            f"{not_converged}: {diagnosis.more_training(stopped, stopping.patience, trainer.max_epochs, **how)}"
            if not_converged
            else None
        ),
        "monitor": best.monitor,
        "best_loss": best.best_model_score.item() if best.best_model_score is not None else None,
        "best_epoch": min(monitored, key=monitored.get) if best.best_model_path and monitored else None,
        "best_checkpoint": str(Path(best.best_model_path)) if best.best_model_path else None,
        "last_checkpoint": str(Path(last.last_model_path)),
        "hparams": choices({**pl_module.hparams, **data.hparams}),
    }


class RunSummary(L.Callback):
    """At the end of `fit`, `metrics.json` in the run directory and the summary on the console (process 0)."""

    def __init__(self) -> None:
        self.summary: dict[str, Any] | None = None
        self.resume_options: list[str] = []
        """Options to repeat in the Resume command: those given with a resume, beyond its config and checkpoint."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.summary = summarize(trainer, pl_module)
        if trainer.is_global_zero:
            run_dir = Path(trainer.logger.log_dir)  # not trainer.log_dir: it waits for the other processes
            text = json.dumps(finite_or_none(self.summary), indent=2, allow_nan=False) + "\n"
            atomic.write_text(run_dir / "metrics.json", text)
            print_summary(self.summary, run_dir, Path(trainer.logger.save_dir), self.resume_options)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.summary = None
