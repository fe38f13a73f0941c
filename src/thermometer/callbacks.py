"""What watches training: the run summary on the console and in `metrics.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities import rank_zero_only

from thermometer.model import LitThermometer, least_squares, polynomial_features


def _loss(weight: torch.Tensor, bias: float, inputs: torch.Tensor, targets: torch.Tensor, degree: int) -> float | None:
    """Mean squared error of raw-unit parameters on some rows, in float64; None for no rows."""
    if not len(targets):
        return None
    t_p = polynomial_features(inputs.double(), degree) @ weight + bias
    return F.mse_loss(t_p, targets.double()).item()


def equation(weight: list[float], bias: float, names: list[str], target: str) -> str:
    """`t_c = 0.53677 * t_u - 17.305`, from raw-unit parameters."""
    terms = [f"{w:.5g} * {name}" for w, name in zip(weight, names, strict=True)] + [f"{bias:.5g}"]
    return f"{target} = " + " + ".join(terms).replace("+ -", "- ")


def stop_reason(trainer: L.Trainer, stopping: EarlyStopping) -> str:
    """Why `fit` ended, in words."""
    if stopping.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
        return (
            f"early stopping: {stopping.monitor} improved by less than {abs(stopping.min_delta):g}"
            f" in {stopping.patience} epochs"
        )
    if stopping.stopping_reason_message:
        return f"early stopping: {stopping.stopping_reason_message}"
    return f"max_epochs={trainer.max_epochs} reached"


class RunSummary(L.Callback):
    """At the end of `fit`, the learned equation against the closed-form optimum.

    Printed on the console and written to `metrics.json` in the run directory; the best monitored loss becomes
    TensorBoard's `hp_metric`.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: LitThermometer) -> None:
        summary = self.summarize(trainer, pl_module)
        self.report(trainer, summary)

    @staticmethod
    def summarize(trainer: L.Trainer, pl_module: LitThermometer) -> dict[str, Any]:
        data = trainer.datamodule
        degree = pl_module.thermometer.degree
        weight, bias = pl_module.thermometer.raw_parameters()
        best_weight, best_bias = least_squares(data.train_inputs, data.train_targets, degree)
        rows = {"train": (data.train_inputs, data.train_targets), "val": (data.val_inputs, data.val_targets)}
        stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
        best = next(c for c in trainer.checkpoint_callbacks if c.monitor)
        last = next(c for c in trainer.checkpoint_callbacks if c.save_last)
        return {
            "equation": equation(weight.tolist(), bias, pl_module.feature_names, data.target_column),
            "features": pl_module.feature_names,
            "target": data.target_column,
            "weight": weight.tolist(),
            "bias": bias,
            **{f"{stage}_loss": _loss(weight, bias, *xy, degree) for stage, xy in rows.items()},
            "closed_form": {
                "weight": best_weight.tolist(),
                "bias": best_bias,
                **{f"{stage}_loss": _loss(best_weight, best_bias, *xy, degree) for stage, xy in rows.items()},
            },
            "epochs": trainer.current_epoch,
            "stop_reason": stop_reason(trainer, stopping),
            "monitor": best.monitor,
            "best_loss": best.best_model_score.item() if best.best_model_score is not None else None,
            "best_checkpoint": str(Path(best.best_model_path)) if best.best_model_path else None,
            "last_checkpoint": str(Path(last.last_model_path)),
        }

    @rank_zero_only
    def report(self, trainer: L.Trainer, summary: dict[str, Any]) -> None:
        run_dir = Path(trainer.log_dir)
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        if summary["best_loss"] is not None:
            trainer.logger.log_hyperparams(trainer.logger.hparams, {"hp_metric": summary["best_loss"]})
        cf = summary["closed_form"]
        optimum = equation(cf["weight"], cf["bias"], summary["features"], summary["target"])
        lines = [
            "",
            f"Learned:      {summary['equation']}",
            f"Closed form:  {optimum}   (least squares, same rows)",
            f"Train loss:   {summary['train_loss']:.6g}   (optimum {cf['train_loss']:.6g},"
            f" gap {summary['train_loss'] - cf['train_loss']:.2g})",
        ]
        if summary["val_loss"] is not None:
            lines.append(f"Val loss:     {summary['val_loss']:.6g}   (optimum's {cf['val_loss']:.6g})")
        if summary["best_checkpoint"]:
            lines.append(
                f"Best:         {summary['monitor']} {summary['best_loss']:.6g} in {summary['best_checkpoint']}"
            )
        lines += [
            f"Stopped:      after {summary['epochs']} epochs: {summary['stop_reason']}",
            f"Run:          {run_dir}   (metrics.json, checkpoints/, config.yaml)",
            f"Watch:        tensorboard --logdir {Path(trainer.logger.root_dir)}",
        ]
        print("\n".join(lines))
