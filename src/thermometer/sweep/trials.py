"""One trial: an ordinary run of the training command with the trial's options, pruned if it diverges or falls behind.

Each trial is `python scripts/train.py <args> --<option> <value> ...`, run in this process, with its own run
directory `lightning_logs/<sweep>/version_N` (`config.yaml`, `metrics.json`, checkpoints, TensorBoard events).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import optuna

from thermometer.cli import main as train
from thermometer.errors import UsageError
from thermometer.report.console import shown
from thermometer.run.stop import GracefulStop
from thermometer.sweep.spec import option_args

if TYPE_CHECKING:
    from thermometer.sweep.spec import Sweep

DIVERGING = 10
"""A trial whose monitored loss rises to 10x its first epoch's is diverging: pruned at once."""


class Pruning(L.Callback):
    """Reports the monitored loss to the trial each epoch, and stops a run that diverges or that the pruner drops.

    Optuna's own `PyTorchLightningPruningCallback` reports only after validation (the chapter's first runs have
    none) and raises inside `fit`, which would leave the run without its summary; this one stops the run at the
    epoch's end like early stopping, so a pruned trial keeps its run directory and says why it stopped.
    """

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.stopped_because: str | None = None
        self.first: float | None = None
        self.run_dir: Path | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run_dir = shown(trainer.logger.log_dir)  # as the run's own summary names it

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        monitor = next(c.monitor for c in trainer.checkpoint_callbacks if c.monitor)
        if monitor not in trainer.callback_metrics or trainer.sanity_checking:
            return
        loss, epoch = trainer.callback_metrics[monitor].item(), trainer.current_epoch + 1
        self.first = loss if self.first is None else self.first
        if not math.isfinite(loss):
            return  # early stopping ends it at once: diverged
        if loss > DIVERGING * self.first:
            self.stopped_because = (
                f"pruned at epoch {epoch}: {monitor} {loss:.4g}, {DIVERGING}x its first {self.first:.4g}"
            )
        else:
            self.trial.report(loss, epoch)
            if self.trial.should_prune():
                pruner = type(self.trial.study.pruner).__name__
                self.stopped_because = f"pruned at epoch {epoch} by {pruner}: {monitor} {loss:.4g}"
        trainer.should_stop = trainer.should_stop or self.stopped_because is not None


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: the sweep stops, with exit status 128 + the signal's number."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BetweenTrials:
    """Ctrl-C or SIGTERM outside a trial's run ends the sweep after the trial, never half-way through Optuna's code.

    A run listens for the signals itself while it trains (and then stops at the end of an epoch). As a callback of
    `study.optimize`, this stops the study after the trial in which a signal was heard.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def listen(self) -> None:
        """Take over Ctrl-C and SIGTERM from here on."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.heard)

    def heard(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def check(self) -> None:
        """Raise `Stopped` if a signal has been heard."""
        if self.signum is not None:
            raise Stopped(128 + self.signum)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.signum is not None:
            study.stop()


class HeardBefore(L.Callback):
    """A signal the sweep heard as the trial started, before its run listened, given to the run at its first epoch.

    The run then stops at that epoch's end, as for any Ctrl-C or SIGTERM, and the sweep with it.
    """

    def __init__(self, signals: BetweenTrials) -> None:
        self.signals = signals
        self.given = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.signals.signum is not None and not self.given:  # the run's own handler takes it now
            self.given = True
            signal.raise_signal(self.signals.signum)


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """A trial's console (its summary), kept for when it fails: the sweep prints one line a trial."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def said(console: str) -> str:
    """The error a run printed, without its `error: `."""
    lines = console.strip().splitlines() or ["failed"]
    return next((line for line in lines if line.startswith("error: ")), lines[-1]).removeprefix("error: ")


def fmt(value: Any) -> str:
    """A number as the console shows losses, or whatever else it is."""
    return f"{value:.6g}" if isinstance(value, int | float) else str(value)


class Objective:
    """One trial: an ordinary run with the trial's options; its value is `objective` from the run's `metrics.json`.

    Args:
        sweep: the sweep the trials belong to.
        signals: the sweep's listener, told of a signal that a run heard after its last epoch.
    """

    def __init__(self, sweep: Sweep, signals: BetweenTrials) -> None:
        self.sweep = sweep
        self.signals = signals

    def __call__(self, trial: optuna.Trial) -> float:
        self.signals.check()  # heard as the trial was made: it runs again when the sweep resumes
        params = self.sweep.suggest(trial)
        pruning = Pruning(trial)
        status = 0
        with captured() as console:
            try:
                callbacks = [pruning, HeardBefore(self.signals)]
                cli = train([*self.sweep.args, *option_args(params)], name=self.sweep.name, callbacks=callbacks)
                # A signal after the run's last epoch leaves that run finished; the sweep still stops after it.
                heard = next(c.signal for c in cli.trainer.callbacks if isinstance(c, GracefulStop))
                self.signals.signum = self.signals.signum or heard
            except SystemExit as exit_:  # 1: diverged; 2: a mistake in the options; 128 + n: a signal
                status = exit_.code if isinstance(exit_.code, int) else 2
        if status >= 128:  # Ctrl-C or SIGTERM stopped the run: the sweep stops; run again, it runs this point again
            raise Stopped(status)
        if status not in (0, 1) or pruning.run_dir is None:  # a value the run refused: the sweep stops
            raise UsageError(f"trial {trial.number} ({' '.join(option_args(params))}): {said(console.getvalue())}")
        return self.result(trial, params, pruning)

    def result(self, trial: optuna.Trial, params: dict[str, Any], pruning: Pruning) -> float:
        """The finished run's objective, kept with the trial beside what it reported; a pruned trial raises."""
        objective, run_dir = self.sweep.objective, pruning.run_dir
        metrics = json.loads((run_dir / "metrics.json").read_text())
        value = metrics.get(objective)
        trial.set_user_attr("run", str(run_dir))
        trial.set_user_attr("args", [*self.sweep.args, *option_args(params)])  # the command that repeats it
        trial.set_user_attr("stop_reason", metrics["stop_reason"])
        trial.set_user_attr("stable_lr", metrics.get("stable_lr"))
        trial.set_user_attr("diverged", metrics["diverged"] is not None)
        trial.set_user_attr("best_line", (metrics["closed_form"] or {}).get(objective))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("value", value if isinstance(value, int | float) and math.isfinite(value) else None)
        shown = ", ".join(f"{option.split('.')[-1]} {chosen}" for option, chosen in params.items())
        result = "pruned" if metrics["diverged"] or pruning.stopped_because else f"{objective} {fmt(value)}"
        print(f"trial {trial.number:>3}  {shown}: {result}, {metrics['stop_reason']}  ({run_dir})")
        if metrics["diverged"] or pruning.stopped_because:
            raise optuna.TrialPruned(metrics["stop_reason"])
        if not isinstance(value, int | float):
            raise UsageError(f"objective {objective}: metrics.json has no number by that name ({value!r}).")
        return float(value)
