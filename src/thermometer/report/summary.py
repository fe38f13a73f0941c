"""The run's summary at the end of `fit`: what was learned and how well, as `metrics.json` and on the console.

It observes and never changes what is learned. Every net gets its losses, the best epoch, why it stopped, the
diagnoses and the best straight line on the same rows as a baseline; a net linear in its parameters also gets its
equation in raw units and the gap to its closed-form optimum (`History.linear` decides which).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from torch import nn

from thermometer.linear import (
    CHUNK_ROWS,
    LinearFit,
    learning_rate_limit,
    least_absolute_line,
    line,
    linear_fit,
    suggested_learning_rate,
    trained_parameters,
)
from thermometer.report import diagnosis
from thermometer.report.console import shown
from thermometer.report.history import History
from thermometer.run import atomic
from thermometer.run.logger import choices
from thermometer.run.parts import RunParts


def finite_or_none(value: Any) -> Any:
    """JSON has no inf or NaN: such numbers become null, in lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value


def stop_reason(trainer: L.Trainer, stopping: Sequence[EarlyStopping], because: str | None = None) -> str:
    """Why `fit` ended, in words (divergence and signals aside).

    Args:
        trainer: the trainer that ran `fit`.
        stopping: the run's early stopping, then any of the user's own (`--trainer.callbacks+=EarlyStopping`).
        because: a callback's own reason (a sweep's pruning).
    """
    if because:
        return because
    for callback in stopping:
        if callback.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            change = f"improved by less than {abs(callback.min_delta):g}" if callback.min_delta else "did not improve"
            return f"early stopping: {callback.monitor} {change} in {callback.patience} epochs"
        if callback.stopping_reason_message:
            return f"early stopping: {callback.stopping_reason_message}"
    if 0 <= trainer.max_steps <= trainer.global_step:
        return f"max_steps={trainer.max_steps} reached"
    if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:  # -1: no limit
        return f"max_epochs={trainer.max_epochs} reached"
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)  # Lightning's, for max_time
    if timer is not None and (timer.time_remaining() or 0) <= 0:
        return f"max_time reached after {timer.time_elapsed():.3g} s of training"
    return "training stopped"


def float64(pl_module: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The system's normalisation and net in eval mode, raw readings to float64 predictions.

    Computed in float64 where the net computes in the type it is given; a net that keeps its own type (bfloat16
    weights, a forward that casts its input) computes as it trained, its predictions then taken to float64.
    """
    model = copy.deepcopy(nn.Sequential(pl_module.normalize, pl_module.net)).eval()
    double, dtype = copy.deepcopy(model).double(), torch.float64
    try:
        with torch.no_grad():
            double(torch.zeros(2, pl_module.normalize.center.numel(), dtype=torch.float64))
    except RuntimeError:  # "mat1 and mat2 must have the same dtype": the net's own type, then
        double, dtype = model, torch.float32

    def predict(t_u: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return double(t_u.to(dtype)).reshape(len(t_u)).double()

    return predict


def is_squared_error(loss: nn.Module) -> bool:
    """Whether the loss is the mean squared error, for which the closed form, the bowl and the rate's limit hold."""
    return type(loss) is nn.MSELoss and loss.reduction == "mean"


def is_absolute_error(loss: nn.Module) -> bool:
    """Whether the loss is the mean absolute error, whose best line goes through two readings."""
    return type(loss) is nn.L1Loss and loss.reduction == "mean"


def equation(weight: list[float], bias: float, names: list[str], target: str) -> str:
    """`t_c = 0.53677 * t_u - 17.305`."""
    terms = [f"{w:.5g} * {name}" for w, name in zip(weight, names, strict=True)] + [f"{bias:.5g}"]
    return f"{target} = " + " + ".join(terms).replace("+ -", "- ")


def linear_summary(
    fit: LinearFit, pl_module: Any, data: Any, rows: dict[str, tuple], measure: Callable[..., float | None]
) -> dict[str, Any]:
    """The equation in raw units, as trained, and the closed-form optimum of the net's own family (squared error)."""
    net, target = pl_module.net, data.target_column
    weight, bias = trained_parameters(net)
    normalized = pl_module.normalize.how != "none"
    trained_names = fit.names([f"{c}n" if normalized else c for c in data.input_columns])
    raw_names = fit.names(data.input_columns)
    best_weight, best_bias = fit.optimum
    raw, raw_best = fit.raw(weight, bias), fit.raw(best_weight, best_bias)

    def predict(weight: torch.Tensor, bias: float) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda t_u: fit.features(t_u) @ weight + bias

    optimum = None
    if is_squared_error(pl_module.loss_fn):
        optimum = {
            "method": "least squares",
            "equation": equation(raw_best[0].tolist(), raw_best[1], raw_names, target)
            if raw_best
            else equation(best_weight.tolist(), best_bias, trained_names, target),
            "weight": raw_best[0].tolist() if raw_best else None,
            "bias": raw_best[1] if raw_best else None,
            **{f"{s}_loss": measure(predict(best_weight, best_bias), *xy) for s, xy in rows.items()},
        }
    elif is_absolute_error(pl_module.loss_fn) and raw and len(raw_names) == 1:  # a line on one input
        train_inputs, train_targets = rows["train"]
        found = least_absolute_line(fit.net.features(train_inputs.double())[:, 0], train_targets)
        if found is not None:
            lad_weight, lad_bias = found

            def lad(t_u: torch.Tensor) -> torch.Tensor:
                return fit.net.features(t_u)[:, 0] * lad_weight + lad_bias

            optimum = {
                "method": "least absolute deviation",
                "equation": equation([lad_weight], lad_bias, raw_names, target),
                "weight": [lad_weight],
                "bias": lad_bias,
                **{f"{s}_loss": measure(lad, *xy) for s, xy in rows.items()},
            }
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
        "optimum": optimum,
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


def numbers_absent(pl_module: Any, data: Any) -> dict[str, str]:
    """The `NUMBERS` that a fit of this system on these rows writes as null whatever it learns, and why.

    Known before training, from the same functions the summary uses: a sweep refuses such an objective up front.
    A loss that diverges is null too, but that is learned, not known.

    Args:
        pl_module: the system as built for `fit` (its net, loss and optimizer).
        data: the data module, its rows loaded.
    """
    absent = {}
    if not len(data.val_targets):
        absent["val_loss"] = "the trials hold out no validation rows"
    normalize = copy.deepcopy(pl_module.normalize)
    normalize.fit(data.train_inputs)
    linear = linear_fit(pl_module.net, normalize, data.train_inputs, data.train_targets)
    net = type(pl_module.net).__name__
    if linear is None:
        absent["bias"] = f"{net} is not linear in its parameters (it has no features method)"
    elif linear.raw_map is None:
        absent["bias"] = f"{net}'s features have no equation in the raw readings"
    full_batch = len(data.train_dataloader()) == 1
    optimizer = pl_module.configure_optimizers()
    limit = step_size_limit(linear if is_squared_error(pl_module.loss_fn) else None, optimizer, full_batch)
    for key in ("stable_lr", "suggested_lr"):
        if limit[key] is None:
            absent[key] = (
                "known only for plain SGD with one batch an epoch on the mean squared error of a net linear in its "
                "parameters"
            )
    return absent


def summarize(
    trainer: L.Trainer,
    pl_module: Any,
    history: History,
    linear: LinearFit | None,
    best_line: tuple[torch.Tensor, float],
    run: RunParts,
) -> dict[str, Any]:
    """Everything `metrics.json` holds; a key that does not apply to this net or loss is null.

    Every loss is the run's own (`pl_module.loss_fn`), computed in float64 with the net in eval mode.
    """
    data = trainer.datamodule
    loss_fn = copy.deepcopy(pl_module.loss_fn).double()
    squared = is_squared_error(pl_module.loss_fn)

    def measure(
        predict: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
    ) -> float | None:
        return mean_loss(loss_fn, predict, inputs, targets)

    rows = {"train": (data.train_inputs, data.train_targets), "val": (data.val_inputs, data.val_targets)}
    losses = {f"{s}_loss": measure(float64(pl_module), *xy) for s, xy in rows.items()}
    line_weight, line_bias = best_line
    linear_part = linear_summary(linear, pl_module, data, rows, measure) if linear else {}
    optimizer = trainer.optimizers[0]
    lr = optimizer.param_groups[0]["lr"]
    signal = run.stop.interrupted

    limit = step_size_limit(linear if squared else None, optimizer, trainer.num_training_batches == 1)
    diverged = diagnosis.divergence(history.losses, finished=signal is None)
    baseline = measure(line(line_weight, line_bias), *rows["train"])
    overfitting = diagnosis.overfitting(history.train, history.val, baseline) if not diverged else None
    not_converged, gap = None, None
    if not (diverged or signal or overfitting):
        optimum_loss, reference = (linear_part.get("optimum") or {}).get("train_loss"), baseline
        if any(group.get("weight_decay") for group in optimizer.param_groups):
            optimum_loss = reference = None  # a penalty moves the minimum off the closed form's and the best line's
        elif optimum_loss:
            gap = losses["train_loss"] / optimum_loss - 1
        not_converged = diagnosis.not_converged(history.train, losses["train_loss"], optimum_loss, reference)
    stopped = stop_reason(trainer, run.early_stopping(), run.because())
    stopped = f"diverged: {diverged.split(' (')[0]}" if diverged else stopped
    if signal and not diverged:
        stopped = f"interrupted by {signal.name}"
    how = {"optimizer": type(optimizer).__name__, "lr": lr, "normalize": pl_module.normalize.how}
    advice = diagnosis.before_any_step(history.train, trainer.num_training_batches) or diagnosis.cure(**how, **limit)
    best = run.best
    monitored = history.losses.get(best.monitor, {})
    return {
        "net": f"{type(pl_module.net).__module__}.{type(pl_module.net).__qualname__}",
        "loss": f"{type(pl_module.loss_fn).__module__}.{type(pl_module.loss_fn).__qualname__}",
        "equation": linear_part.get("equation"),
        "features": linear_part.get("features"),
        "target": data.target_column,
        "weight": linear_part.get("weight"),
        "bias": linear_part.get("bias"),
        **losses,
        **final_metrics(pl_module, rows),
        "trained": linear_part.get("trained"),
        "last_epoch": {name: curve[max(curve)] for name, curve in history.losses.items() if curve},
        "closed_form": {  # the best straight line in the raw readings: every net's baseline, in the run's loss
            "equation": equation(line_weight.tolist(), line_bias, list(data.input_columns), data.target_column),
            "weight": line_weight.tolist(),
            "bias": line_bias,
            **{f"{s}_loss": measure(line(line_weight, line_bias), *xy) for s, xy in rows.items()},
        },
        "optimum": linear_part.get("optimum"),
        "epochs": trainer.current_epoch,
        "stop_reason": stopped,
        "optimizer": how["optimizer"],
        "lr": lr,
        **limit,
        "diverged": f"training diverged: {diverged}. {advice}" if diverged else None,
        "interrupted": signal.name if signal else None,
        "overfitting": overfitting,
        "not_converged": (
            f"{not_converged}: "
            + diagnosis.more_training(
                stopped,
                run.stopping.patience,
                trainer.max_epochs,
                **how,
                stable_lr=limit["stable_lr"],
                suggested_lr=limit["suggested_lr"],
                condition_number=limit["condition_number"],
                gap=gap,
                epochs=trainer.current_epoch,
            )
            if not_converged
            else None
        ),
        "monitor": best.monitor,
        "best_loss": best.best_model_score.item() if best.best_model_score is not None else None,
        "best_epoch": min(monitored, key=monitored.get) if best.best_model_path and monitored else None,
        "best_checkpoint": str(shown(best.best_model_path)) if best.best_model_path else None,
        "last_checkpoint": str(shown(run.last.last_model_path)),
        "hparams": choices({**pl_module.hparams, **data.hparams}),
    }


def final_metrics(pl_module: Any, rows: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Each metric of the trained net on each stage's rows, `{"train/MeanAbsoluteError": ..., "val/...": ...}`.

    As the losses are: the final weights, in eval mode and float64, a chunk of rows at a time.
    """
    predict, found = float64(pl_module), {}
    for stage, (inputs, targets) in rows.items():
        if not len(targets):
            continue
        metrics = getattr(pl_module, f"{stage}_metrics").clone().set_dtype(torch.float64).cpu()
        metrics.reset()
        with torch.no_grad():
            for start in range(0, len(targets), CHUNK_ROWS):
                chunk = slice(start, start + CHUNK_ROWS)
                metrics.update(predict(inputs[chunk].double()), targets[chunk].double())
        found |= {name: float(value) for name, value in metrics.compute().items()}
    return found


def objectives(pl_module: Any, data: Any) -> dict[str, str | None]:
    """What a sweep may minimise: each number of `metrics.json` this run will write, and why the others are null.

    The `NUMBERS`, then each metric, `train/<Metric>` and `val/<Metric>`; a name maps to None if the run writes a number
    for it, or to why it writes null whatever it learns.
    """
    absent = numbers_absent(pl_module, data)
    found: dict[str, str | None] = {name: absent.get(name) for name in NUMBERS}
    found |= dict.fromkeys(pl_module.train_metrics.keys())
    no_rows = "the trials hold out no validation rows"
    found |= {name: None if len(data.val_targets) else no_rows for name in pl_module.val_metrics.keys()}  # noqa: SIM118
    return found


def mean_loss(
    loss_fn: nn.Module, predict: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
) -> float | None:
    """The loss of `predict` on some rows, a chunk of rows at a time, each weighted by its rows; None for no rows."""
    if not len(targets):
        return None
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(targets), CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            total += loss_fn(predict(inputs[rows].double()), targets[rows].double()).item() * len(targets[rows])
    return total / len(targets)


def write(summary: dict[str, Any], run_dir: Path) -> None:
    """`metrics.json`, whole or not at all (JSON has no inf or NaN: such numbers are null)."""
    text = json.dumps(finite_or_none(summary), indent=2, allow_nan=False) + "\n"
    atomic.write_text(run_dir / "metrics.json", text)
