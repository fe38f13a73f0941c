"""What watches training and reports it: summary, figures and predictions.

The run summary (console and `metrics.json`) with the divergence diagnosis, the figures (TensorBoard and PNGs),
and the predictions file of `predict`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter, EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from thermometer.checkpoints import GracefulStop
from thermometer.errors import Diverged, Interrupted, UsageError
from thermometer.model import CHUNK_ROWS, LitThermometer, polynomial_features

LOSSES = ("train/loss", "val/loss")
RUN_FILES = ("metrics.json", "fit.png", "loss_landscape.png", "checkpoints/", "config.yaml")  # listed if written


def _loss(weight: torch.Tensor, bias: float, inputs: torch.Tensor, targets: torch.Tensor, degree: int) -> float | None:
    """Mean squared error of raw-unit parameters on some rows, in float64; None for no rows."""
    if not len(targets):
        return None
    squared = 0.0
    for start in range(0, len(targets), CHUNK_ROWS):  # float64 a chunk at a time: millions of rows stay cheap
        rows = slice(start, start + CHUNK_ROWS)
        t_p = polynomial_features(inputs[rows].double(), degree) @ weight + bias
        squared += F.mse_loss(t_p, targets[rows].double(), reduction="sum").item()
    return squared / len(targets)


def equation(weight: list[float], bias: float, names: list[str], target: str) -> str:
    """`t_c = 0.53677 * t_u - 17.305`, from raw-unit parameters."""
    terms = [f"{w:.5g} * {name}" for w, name in zip(weight, names, strict=True)] + [f"{bias:.5g}"]
    return f"{target} = " + " + ".join(terms).replace("+ -", "- ")


def finite_or_none(value: Any) -> Any:
    """JSON has no inf or NaN: such numbers become null, in lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value


def tensorboard_writers(trainer: L.Trainer) -> list[Any]:
    """The `SummaryWriter` of each TensorBoard logger of the trainer."""
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


def stop_reason(trainer: L.Trainer, stopping: EarlyStopping) -> str:
    """Why `fit` ended, in words (divergence aside: `RunSummary` words that)."""
    if stopping.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
        change = f"improved by less than {abs(stopping.min_delta):g}" if stopping.min_delta else "did not improve"
        return f"early stopping: {stopping.monitor} {change} in {stopping.patience} epochs"
    if stopping.stopping_reason_message:
        return f"early stopping: {stopping.stopping_reason_message}"
    return f"max_epochs={trainer.max_epochs} reached"


def remedies(pl_module: LitThermometer, optimizer: torch.optim.Optimizer) -> str:
    """What to change when the loss blows up: the chapter's three cures, minus those already taken."""
    lr = optimizer.param_groups[0]["lr"]
    cures = [f"lower the learning rate (--model.optimizer.lr {lr / 100:g})"]
    if pl_module.thermometer.normalize == "none":
        cures.append("normalise the input (--model.normalize standardize)")
    if not isinstance(optimizer, torch.optim.Adam):
        cures.append("use Adam (--model.optimizer Adam --model.optimizer.lr 0.1)")
    return ", ".join(cures[:-1]) + (" or " if len(cures) > 1 else "") + cures[-1]


class RunSummary(L.Callback):
    """At the end of `fit`, the learned equation against the closed-form optimum, or why training diverged.

    Printed on the console and written to `metrics.json` in the run directory; the best monitored loss becomes
    TensorBoard's `hp_metric`. Each epoch it notes a few numbers (so checkpoints stay small): the first and last
    losses, the epoch with the lowest monitored loss, each loss's last finite value and the first that was not.
    A diverged run (a loss went inf or NaN, or training ended worse than it began) raises `Diverged` once
    everything is written.
    """

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.last_finite: dict[str, tuple[int, float]] = {}
        self.not_finite: tuple[str, float, int] | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: LitThermometer) -> None:
        epoch, metrics = trainer.current_epoch + 1, trainer.callback_metrics
        self.last = {name: metrics[name].item() for name in LOSSES if name in metrics}
        self.first = self.first or self.last
        for name, value in self.last.items():
            if math.isfinite(value):
                self.last_finite[name] = (epoch, value)
            elif self.not_finite is None:
                self.not_finite = (name, value, epoch)
        monitor = next(c.monitor for c in trainer.checkpoint_callbacks if c.monitor)
        if self.last.get(monitor, math.inf) < self.best.get(monitor, math.inf):
            self.best = {"epoch": epoch, **self.last}

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("first", "last", "best", "last_finite", "not_finite")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)

    def on_fit_end(self, trainer: L.Trainer, pl_module: LitThermometer) -> None:
        summary = self.summarize(trainer, pl_module)
        self.report(trainer, summary)
        if summary["diverged"]:
            raise Diverged(summary["diverged"])
        if summary["interrupted"]:
            raise Interrupted(signal.Signals[summary["interrupted"]])

    def divergence(self, trainer: L.Trainer, pl_module: LitThermometer) -> tuple[str, str] | None:
        """The stop reason and the diagnosis of a run whose loss blew up; None if training went downhill."""
        if self.not_finite is not None:
            name, value, epoch = self.not_finite
            what = when = f"{name} became {value} at epoch {epoch}"
            if name in self.last_finite:
                finite_epoch, finite = self.last_finite[name]
                when += f" (last finite {finite:.5g} at epoch {finite_epoch})"
        elif self.last.get("train/loss", -math.inf) > self.first.get("train/loss", math.inf):
            first, last = self.first["train/loss"], self.last["train/loss"]
            what = when = f"train/loss rose from {first:.5g} at epoch 1 to {last:.5g} at epoch {trainer.current_epoch}"
        else:
            return None
        optimizer = trainer.optimizers[0]
        return f"diverged: {what}", (
            f"training diverged: {when}. The steps of {type(optimizer).__name__} with lr "
            f"{optimizer.param_groups[0]['lr']:g} overshoot the minimum: {remedies(pl_module, optimizer)}."
        )

    def overfitting(self) -> dict[str, Any] | None:
        """Figure 5.14 B in numbers: the validation loss up 10 % from its minimum while the training loss fell below it.

        Training loss still above that minimum is a model not yet fitted, whatever the validation rows do.
        """
        best, last = self.best, self.last
        if "val/loss" not in best:
            return None
        rose = last["val/loss"] > 1.1 * best["val/loss"]
        if rose and last["train/loss"] < min(best["train/loss"], best["val/loss"]):
            return {"since_epoch": best["epoch"], **{name: [best[name], last[name]] for name in LOSSES}}
        return None

    def summarize(self, trainer: L.Trainer, pl_module: LitThermometer) -> dict[str, Any]:
        data = trainer.datamodule
        model = pl_module.thermometer
        weight, bias = model.raw_parameters()
        best_weight, best_bias = data.closed_form(model.degree)
        rows = {"train": (data.train_inputs, data.train_targets), "val": (data.val_inputs, data.val_targets)}
        stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
        best = next(c for c in trainer.checkpoint_callbacks if c.monitor)
        last = next(c for c in trainer.checkpoint_callbacks if c.save_last)
        diverged = self.divergence(trainer, pl_module)
        stopped, diverged = diverged or (stop_reason(trainer, stopping), None)
        interrupted = next((c.signal for c in trainer.callbacks if isinstance(c, GracefulStop) and c.signal), None)
        if interrupted and not diverged:
            stopped = f"interrupted by {interrupted.name}"
        optimizer = trainer.optimizers[0]
        return {
            "equation": equation(weight.tolist(), bias, pl_module.feature_names, data.target_column),
            "features": pl_module.feature_names,
            "target": data.target_column,
            "weight": weight.tolist(),
            "bias": bias,
            **{f"{stage}_loss": _loss(weight, bias, *xy, model.degree) for stage, xy in rows.items()},
            "trained": {
                "normalization": pl_module.normalization,
                "features": pl_module.trained_feature_names,
                "weight": model.weight.tolist(),
                "bias": model.bias.item(),
            },
            "last_epoch": self.last,
            "closed_form": {
                "weight": best_weight.tolist(),
                "bias": best_bias,
                **{f"{stage}_loss": _loss(best_weight, best_bias, *xy, model.degree) for stage, xy in rows.items()},
            },
            "epochs": trainer.current_epoch,
            "stop_reason": stopped,
            "diverged": diverged,
            "interrupted": interrupted.name if interrupted else None,
            "overfitting": self.overfitting(),
            "monitor": best.monitor,
            "best_loss": best.best_model_score.item() if best.best_model_score is not None else None,
            "best_epoch": self.best.get("epoch") if best.best_model_path else None,
            "best_checkpoint": str(Path(best.best_model_path)) if best.best_model_path else None,
            "last_checkpoint": str(Path(last.last_model_path)),
            # What TensorBoard's HParams tab compares runs by: the choices the chapter is about.
            "hparams": {
                "optimizer": type(optimizer).__name__,
                "lr": optimizer.param_groups[0]["lr"],
                "normalize": model.normalize,
                "degree": model.degree,
                "inputs": ", ".join(pl_module.input_columns),
                "val_fraction": data.val_fraction,
                "split_seed": data.split_seed,
                "batch_size": data.batch_size or "all",
                "init_weight": pl_module.hparams.init_weight,
                "init_bias": pl_module.hparams.init_bias,
                "max_epochs": trainer.max_epochs,
            },
        }

    @rank_zero_only
    def report(self, trainer: L.Trainer, summary: dict[str, Any]) -> None:
        run_dir = Path(trainer.logger.log_dir)  # not trainer.log_dir: it waits for the other processes
        (run_dir / "metrics.json").write_text(json.dumps(finite_or_none(summary), indent=2, allow_nan=False) + "\n")
        results = {"hp_metric": summary["best_loss"], "final/train_loss": summary["train_loss"]}
        results["final/val_loss"] = summary["val_loss"]
        results = {name: value for name, value in finite_or_none(results).items() if value is not None}
        for experiment in tensorboard_writers(trainer) if not summary["interrupted"] else []:
            experiment.add_hparams(summary["hparams"], results, run_name=".")  # ".": this run's directory
        where = [
            f"Run:          {run_dir}   ({', '.join(n for n in RUN_FILES if (run_dir / n.rstrip('/')).exists())})",
            f"Watch:        tensorboard --logdir {Path(trainer.logger.root_dir)}",
        ]
        if summary["diverged"]:
            print("\n".join(["", f"Stopped:      after {summary['epochs']} epochs: {summary['stop_reason']}", *where]))
            print(f"error: {summary['diverged']}", file=sys.stderr)
            return
        if summary["interrupted"]:
            config, last = run_dir / "config.yaml", summary["last_checkpoint"]
            resume = f"python scripts/train.py fit --config {config} --ckpt_path {last}"
            where.append(f"Resume:       {resume}   (continues in {run_dir})")
        print("\n".join(["", *self.results(summary), *where]))

    @staticmethod
    def results(summary: dict[str, Any]) -> list[str]:
        """The summary's lines about what was learned, how well, and why it stopped."""
        cf, trained, last = summary["closed_form"], summary["trained"], summary["last_epoch"]
        lines = [f"Learned:      {summary['equation']}"]
        if trained["normalization"]:
            as_trained = equation(trained["weight"], trained["bias"], trained["features"], summary["target"])
            lines.append(f"Trained as:   {as_trained}   with {', '.join(trained['normalization'])}")
        lines += [
            f"Closed form:  {equation(cf['weight'], cf['bias'], summary['features'], summary['target'])}"
            "   (least squares, same rows)",
            f"Train loss:   {summary['train_loss']:.6g}   (optimum {cf['train_loss']:.6g},"
            f" gap {summary['train_loss'] - cf['train_loss']:.2g})",
        ]
        if summary["val_loss"] is not None:
            lines.append(f"Val loss:     {summary['val_loss']:.6g}   (optimum's {cf['val_loss']:.6g})")
        if "train/loss" in last and f"{last['train/loss']:.6g}" != f"{summary['train_loss']:.6g}":
            lines.append(
                f"Last epoch:   train/loss {last['train/loss']:.6g}   (before the epoch's step, as the book prints it)"
            )
        if summary["best_checkpoint"]:
            lines.append(
                f"Best:         {summary['monitor']} {summary['best_loss']:.6g} at epoch {summary['best_epoch']},"
                f" kept in {summary['best_checkpoint']}"
            )
        if overfit := summary["overfitting"]:
            (val_best, val_end), (train_best, train_end) = overfit["val/loss"], overfit["train/loss"]
            lines.append(
                f"Overfitting:  since epoch {overfit['since_epoch']} val/loss rose from {val_best:.4g} to {val_end:.4g}"
                f" while train/loss fell from {train_best:.4g} to {train_end:.4g} (Figure 5.14 B)"
            )
        lines.append(f"Stopped:      after {summary['epochs']} epochs: {summary['stop_reason']}")
        return lines


class Figures(L.Callback):
    """The pictures of learning: the fit drawn over the readings, the loss landscape, training against validation.

    TensorBoard's images tab gets `fit` at the start (step 0), after scheduled epochs (step = epochs done) and at
    the end, so its slider shows the line moving into place, and `loss_landscape` at the end; the run directory gets
    `fit.png` and `loss_landscape.png`. Its custom-scalars tab charts training and validation loss together.
    The fit is drawn for one input column; the landscape for the line `w * t_u + b` (degree 1).

    Args:
        every_n_epochs: draw the fit after every N epochs; by default after epochs 1, 4, 16, 64, ... (powers of
            4): dense where the line moves most, and at most 10 images up to 260,000 epochs (TensorBoard shows 10
            images a tag unless started with `--samples_per_plugin images=100`).
        max_points: the most readings drawn, evenly spread over a bigger CSV, so that a frame stays cheap.

    """

    def __init__(self, every_n_epochs: int | None = None, max_points: int = 1000) -> None:
        if every_n_epochs is not None and every_n_epochs < 1:
            raise UsageError(f"every_n_epochs is {every_n_epochs}; it must be 1 or more. Set --figures.every_n_epochs.")
        self.every_n_epochs, self.max_points = every_n_epochs, max_points
        self.path: list[tuple[float, float]] = []
        self.fit = None
        self.drawn = -1

    def due(self, epoch: int) -> bool:
        """Whether the fit is drawn after this epoch."""
        if self.every_n_epochs:
            return epoch % self.every_n_epochs == 0
        return epoch & (epoch - 1) == 0 and epoch.bit_length() % 2 == 1  # a power of 4

    @staticmethod
    def line(pl_module: LitThermometer) -> bool:
        """The landscape is drawn over (weight, bias): one input, degree 1."""
        return len(pl_module.input_columns) == 1 and pl_module.thermometer.degree == 1

    @staticmethod
    def trained_parameters(pl_module: LitThermometer) -> tuple[float, float]:
        return pl_module.thermometer.weight[0].item(), pl_module.thermometer.bias.item()

    def state_dict(self) -> dict[str, Any]:
        return {"path": self.path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.path = state_dict["path"]

    def on_train_start(self, trainer: L.Trainer, pl_module: LitThermometer) -> None:
        if not self.path and self.line(pl_module):  # a resumed run has its path so far
            self.path = [self.trained_parameters(pl_module)]
        if not trainer.is_global_zero:
            return
        for experiment in tensorboard_writers(trainer):
            experiment.add_custom_scalars(
                {
                    "training against validation": {
                        name: ["Multiline", [f"^train/{key}$", f"^val/{key}$"]]
                        for name, key in (("loss (MSE)", "loss"), ("mean absolute error", "mae"), ("R²", "r2"))
                    }
                }
            )
        if len(pl_module.input_columns) == 1:
            self.fit = self.fit_figure(trainer.datamodule, pl_module)
            self.draw_fit(trainer, pl_module, trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: LitThermometer) -> None:
        epoch = trainer.current_epoch + 1
        if self.path:
            self.path.append(self.trained_parameters(pl_module))
        if self.fit is not None and self.due(epoch):
            self.draw_fit(trainer, pl_module, epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: LitThermometer) -> None:
        if self.fit is None:
            return
        epochs, run_dir = trainer.current_epoch, Path(trainer.logger.log_dir)  # rank 0 only
        from matplotlib.image import imsave  # see fit_figure

        if self.drawn != epochs:
            self.draw_fit(trainer, pl_module, epochs)
        imsave(run_dir / "fit.png", self.last_frame)
        if self.path:
            from thermometer.figures import pixels  # see fit_figure

            landscape = self.landscape(trainer, pl_module)
            landscape.savefig(run_dir / "loss_landscape.png")
            for experiment in tensorboard_writers(trainer):
                experiment.add_image("loss_landscape", pixels(landscape), epochs, dataformats="HWC")

    def subsample(self, rows: int) -> torch.Tensor:
        """At most `max_points` row numbers, evenly spread (the rows of a split are already in random order)."""
        return torch.linspace(0, rows - 1, min(rows, self.max_points)).round().long()

    def fit_figure(self, data: Any, pl_module: LitThermometer) -> Any:
        # matplotlib takes half a second to import: only runs that draw pay for it.
        from thermometer.figures import FitFigure

        train, val = self.subsample(len(data.train_targets)), self.subsample(len(data.val_targets))
        t_u = torch.cat([data.train_inputs[:, 0], data.val_inputs[:, 0]])
        low, high = t_u.min().item(), t_u.max().item()
        margin = 0.05 * (high - low or 1.0)
        self.xs = torch.linspace(low - margin, high + margin, 200)[:, None]
        weight, bias = data.closed_form(pl_module.thermometer.degree)
        closed_form = polynomial_features(self.xs.double(), pl_module.thermometer.degree) @ weight + bias
        return FitFigure(
            (data.train_inputs[train, 0].numpy(), data.train_targets[train].numpy()),
            (data.val_inputs[val, 0].numpy(), data.val_targets[val].numpy()),
            self.xs[:, 0].numpy(),
            closed_form.numpy(),
            pl_module.input_columns[0],
            data.target_column,
        )

    @rank_zero_only
    def draw_fit(self, trainer: L.Trainer, pl_module: LitThermometer, epoch: int) -> None:
        with torch.no_grad():
            curve = pl_module.thermometer(self.xs).numpy()
        weight, bias = pl_module.thermometer.raw_parameters()
        when = "Start" if epoch == 0 else f"After {epoch} epoch{'s' if epoch > 1 else ''}"
        learned = equation(weight.tolist(), bias, pl_module.feature_names, trainer.datamodule.target_column)
        if len(learned) > 60:  # a long polynomial would not fit the title
            learned = f"a degree-{pl_module.thermometer.degree} polynomial in {pl_module.input_columns[0]}"
        title = f"{when}: {learned}"
        self.last_frame = self.fit.draw(curve, title)
        for experiment in tensorboard_writers(trainer):
            experiment.add_image("fit", self.last_frame, epoch, dataformats="HWC")
        self.drawn = epoch

    def landscape(self, trainer: L.Trainer, pl_module: LitThermometer) -> Any:
        from thermometer.figures import loss_landscape  # see fit_figure

        data, model = trainer.datamodule, pl_module.thermometer
        t_un = model.normalized(data.train_inputs)
        # The optimum in the coordinates the model trains in: t_un = (t_u - center) * scale.
        weight, bias = data.closed_form(1)
        center, scale = model.center[0].item(), model.scale[0].item()
        weight, bias = weight / scale, bias + weight[0].item() * center
        [name] = pl_module.trained_feature_names
        optimizer = trainer.optimizers[0]
        how = f"{type(optimizer).__name__} lr {optimizer.param_groups[0]['lr']:g}"
        units = f", {pl_module.normalization[0]}" if pl_module.normalization else ""
        return loss_landscape(
            t_un[:, 0].numpy(),
            data.train_targets.numpy(),
            self.path,
            (weight[0].item(), bias),
            name,
            f"Training loss of {data.target_column} = w * {name} + b{units}\nand the path of {how}",
        )


class PredictionWriter(BasePredictionWriter):
    """`predict` writes `predictions.csv` into the checkpoint's run directory: the readings and the predictions.

    An existing file is never overwritten: the next free name (`predictions-2.csv`, ...) is taken.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: LitThermometer, predictions: Any, batch_indices: Any
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
                with path.open("x", newline="") as file:  # "x": fails rather than overwrite, even in a race
                    frame.to_csv(file, index=False)
                break
            except FileExistsError:
                continue
        if len(frame) <= 20:
            print(frame.to_string(index=False, float_format="{:.6g}".format))
        shown = os.path.relpath(path)
        readings = f"{len(frame)} reading{'s' if len(frame) != 1 else ''}"
        print(f"Predictions:  {path if shown.startswith('..') else shown}   ({readings}; column {column})")
