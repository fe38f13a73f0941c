"""The report of a run, one pipeline: each epoch's history and figures, then the summary at the end of `fit`.

It observes and never changes what is learned: it reads what the system logged, evaluates copies of the net in eval
mode, and draws no random numbers. What it needs is handed to it (`RunParts`); it looks nothing up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import grad_norm

from thermometer.linear import (
    LinearFit,
    best_line,
    least_absolute_line,
    line,
    linear_fit,
    parameter_vector,
    trained_parameters,
)
from thermometer.report.console import print_summary
from thermometer.report.figures import Figures, landscape_figure
from thermometer.report.history import History
from thermometer.report.summary import equation, is_absolute_error, is_squared_error, summarize, write
from thermometer.run.parts import RunParts

SHOWN_GRADIENTS = 8
"""Up to this many parameters, TensorBoard gets each one's gradient; beyond, each tensor's norm."""
PARAMETERS = "weights"
"""TensorBoard's group of the weight, the bias and their gradients: after `train/` and `val/`, which TensorBoard
sorts first by name and opens, so that the losses come first."""


class Report(L.Callback):
    """History, figures and summary of `fit`: `metrics.json`, `fit.png`, `loss_landscape.png` and the console.

    For a net linear in its parameters it also logs the weight and bias each epoch (`weights/weight`,
    `weights/bias`), in the units of the raw readings where the net can say them so.

    Args:
        figures: the figures' options (`--figures.*`).
        run: the callbacks that keep the run, whose state the summary reports.
        resume_options: options to repeat in the Resume command (those given with a resume).
        program: the command that ran, as the Resume command repeats it.

    """

    def __init__(
        self,
        figures: Figures,
        run: RunParts,
        resume_options: list[str] | None = None,
        program: str = "python scripts/train.py",
    ) -> None:
        self.figures, self.run, self.program = figures, run, program
        self.resume_options = resume_options or []
        self.history = History()
        self.linear: LinearFit | None = None
        self.line: tuple[torch.Tensor, float] | None = None
        self.names: list[str] = []
        self.summary: dict[str, Any] | None = None
        self.gradients: dict[str, float] = {}
        self.median_line: tuple[float, float] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.summary = None

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        data = trainer.datamodule
        self.line = best_line(data.train_inputs, data.train_targets)
        self.linear = linear_fit(pl_module.net, pl_module.normalize, data.train_inputs, data.train_targets)
        if self.linear is not None:
            columns = data.input_columns if self.linear.raw_map is not None else [f"{c}n" for c in data.input_columns]
            names = self.linear.names(columns)
            self.names = [f"{PARAMETERS}/weight"] if len(names) == 1 else [f"{PARAMETERS}/weight/{n}" for n in names]
            self.names.append(f"{PARAMETERS}/bias")
            if not self.history.path:  # a resumed run has its path so far
                self.history.path.append(tuple(parameter_vector(pl_module.net).tolist()))
        self.median_line = None
        if self.linear is not None and self.linear.optimum[0].numel() == 1 and is_absolute_error(pl_module.loss_fn):
            features = self.linear.net.features(data.train_inputs.double())[:, 0]
            self.median_line = least_absolute_line(features, data.train_targets)
        self.figures.start(trainer, pl_module, self.reference, self.title(pl_module, data))

    def reference(self, data: Any) -> tuple[torch.Tensor, str]:
        """The curve a fit is drawn against: the closed form of the net's family, or the best straight line."""
        xs = self.figures.references(data)
        if self.median_line is not None:  # the absolute error's own optimum (section 5.3)
            weight, bias = self.median_line
            return self.linear.net.features(xs.double())[:, 0] * weight + bias, "least absolute deviation (exact)"
        if self.linear is not None:
            weight, bias = self.linear.optimum
            return self.linear.features(xs) @ weight + bias, "least squares (closed form)"
        return line(*self.line)(xs.double()), "best line (least squares)"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        epoch = trainer.current_epoch + 1
        self.history.record(epoch, trainer.callback_metrics)
        values = dict(self.gradients)
        if self.linear is not None:
            parameters = parameter_vector(pl_module.net)
            self.history.path.append(tuple(parameters.tolist()))
            values.update(zip(self.names, self.linear.raw_vector(parameters).tolist(), strict=True))
        for logger in trainer.loggers:
            logger.log_metrics(values, step=epoch)
        if trainer.is_global_zero and self.figures.due(epoch):  # the title only for a frame: it costs an epoch's step
            self.figures.epoch_end(trainer, pl_module, epoch, self.title(pl_module, trainer.datamodule))

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: Any, optimizer: Any) -> None:
        # The epoch's last step's gradient, kept for the epoch's end (Lightning clears the gradients before it).
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self.gradients = gradients(pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self.figures.end(trainer, pl_module, self.title(pl_module, trainer.datamodule), self.landscape(trainer))

    def on_fit_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.summary = summarize(trainer, pl_module, self.history, self.linear, self.line, self.run)
        if trainer.is_global_zero:
            run_dir = Path(trainer.logger.log_dir)  # not trainer.log_dir: it waits for the other processes
            write(self.summary, run_dir)
            print_summary(self.summary, run_dir, Path(trainer.logger.save_dir), self.resume_options, self.program)

    def teardown(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        self.figures.close()

    def title(self, pl_module: Any, data: Any) -> str:
        """The learned equation in raw units if it is short, or the net and its training loss."""
        raw = self.linear.raw(*trained_parameters(pl_module.net)) if self.linear is not None else None
        if raw is not None:
            learned = equation(raw[0].tolist(), raw[1], self.linear.names(data.input_columns), data.target_column)
            if len(learned) <= 60:
                return learned
        name, train = type(pl_module.net).__name__, self.history.train
        return f"{name}, train/loss {train[max(train)]:.4g}" if train else name

    def landscape(self, trainer: L.Trainer) -> Any:
        """The figure of the mean squared error over (weight, bias), for a net with one weight and a bias."""
        pl_module = trainer.lightning_module
        if self.linear is None or self.linear.optimum[0].numel() != 1 or not is_squared_error(pl_module.loss_fn):
            return None
        data = trainer.datamodule
        normalized = pl_module.normalize.how != "none"
        [name] = self.linear.names([f"{c}n" if normalized else c for c in data.input_columns])
        optimizer = trainer.optimizers[0]
        how = f"{type(optimizer).__name__} lr {optimizer.param_groups[0]['lr']:g}"
        described = pl_module.normalize.describe(data.input_columns)
        return landscape_figure(self.linear, self.history.path, name, data.target_column, how, described)

    def state_dict(self) -> dict[str, Any]:
        return self.history.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history.load_state_dict(state_dict)


def gradients(pl_module: Any) -> dict[str, float]:
    """The gradient of the epoch's last step: each number of a small net, or the norm of each tensor.

    `weights/grad/weight` and `weights/grad/bias` for the line (in the units it trains in); Lightning's `grad_norm`
    for a network, `weights/grad_2.0_norm/net.hidden_linear.weight`, ...
    """
    named = [(name.removeprefix("net."), p.grad) for name, p in pl_module.named_parameters() if p.grad is not None]
    if sum(g.numel() for _, g in named) > SHOWN_GRADIENTS:
        return {f"{PARAMETERS}/{name}": float(value) for name, value in grad_norm(pl_module, norm_type=2).items()}
    return {
        f"{PARAMETERS}/grad/{name}" if g.numel() == 1 else f"{PARAMETERS}/grad/{name}/{i}": value
        for name, g in named
        for i, value in enumerate(g.reshape(-1).tolist())
    }
