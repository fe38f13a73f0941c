"""Sweeps: an Optuna study over any options of the training command, each trial an ordinary run.

A sweep file (`configs/sweeps/*.yaml`) names the options to vary and how to search them; every trial is
`python scripts/train.py <args> --<option> <value> ...`, run in this process, with its own run directory
`lightning_logs/<sweep>/version_N` (`config.yaml`, `metrics.json`, checkpoints, TensorBoard events), so that
TensorBoard's HParams tab compares the trials. The study is kept in a storage, a SQLite file by default: a stopped
sweep resumes where it stopped, and several workers (processes, or machines sharing a database URL) share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import io
import itertools
import json
import math
import os
import signal
import socket
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import optuna
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from thermometer.cli import main as train
from thermometer.data import TemperatureDataModule
from thermometer.errors import UsageError
from thermometer.report.summary import NUMBERS
from thermometer.run import atomic
from thermometer.run.stop import GracefulStop

DIVERGING = 10
"""A trial whose monitored loss rises to 10x its first epoch's is diverging: pruned at once."""
HEARTBEAT_S = 10
"""Seconds between a running trial's heartbeats; a trial silent for 3 (its worker was killed) is retried."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


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
        self.run_dir = Path(trainer.logger.log_dir)

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


def values(option: str, spec: Any) -> list[Any]:
    """The grid's values of one option: a list as it is, or `{low, high, num, log}` as `num` points."""
    if isinstance(spec, list) and spec:
        return spec
    if isinstance(spec, dict) and {"low", "high", "num"} <= spec.keys():
        low, high, num = float(spec["low"]), float(spec["high"]), int(spec["num"])
        if num < 1 or (spec.get("log") and min(low, high) <= 0):
            raise UsageError(f"sweep space {option}: {spec!r}; num must be 1 or more, and a log range above 0.")
        points = np.geomspace(low, high, num) if spec.get("log") else np.linspace(low, high, num)
        return [float(f"{p:.6g}") for p in points]
    raise UsageError(f"sweep space {option}: {spec!r}; give a list of values or {{low, high, num[, log: true]}}.")


def reach(option: str, spec: Any, grid: bool) -> list[Any]:
    """The values of one option that the trials' options are checked with: a range's ends, every other choice."""
    if grid or isinstance(spec, list) or (isinstance(spec, dict) and "num" in spec):
        choices = values(option, spec)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in choices):
            return sorted({min(choices), max(choices)})
        return list({json.dumps(v): v for v in choices}.values())
    if isinstance(spec, dict) and {"low", "high"} <= spec.keys() and spec.keys() <= {"low", "high", "log", "step"}:
        try:  # Optuna's own checks of a range: low below high, log above 0, a step that fits
            low, high = spec["low"], spec["high"]
            integers = isinstance(low, int) and isinstance(high, int) and not spec.get("log")
            kind = optuna.distributions.IntDistribution if integers else optuna.distributions.FloatDistribution
            kind(low, high, log=bool(spec.get("log")), step=spec.get("step") or (1 if integers else None))
        except (TypeError, ValueError) as error:
            raise UsageError(f"sweep space {option}: {spec!r}: {error}") from None
        return [low, high]
    raise UsageError(f"sweep space {option}: {spec!r}; give a list of values or {{low, high[, log: true, step]}}.")


def suggest(trial: optuna.Trial, option: str, spec: Any, grid: bool) -> Any:
    """The trial's value of one option: from the grid, or sampled from a list or a `{low, high[, log, step]}` range.

    A grid's numbers are a float or int range to Optuna (on a log scale if all are positive), so that one study can
    hold grids over other values of the same option; anything else, and a sampler's list, is a choice among values.
    """
    if grid or isinstance(spec, list):
        choices = values(option, spec)
        if not grid or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in choices):
            return trial.suggest_categorical(option, choices)
        log = (isinstance(spec, dict) and bool(spec.get("log"))) or (isinstance(spec, list) and min(choices) > 0)
        low, high = min(choices), max(choices)
        if all(isinstance(v, int) for v in choices):
            return trial.suggest_int(option, low, high, log=log)
        return trial.suggest_float(option, low, high, log=log)
    if isinstance(spec, dict) and {"low", "high"} <= spec.keys():
        low, high, log, step = spec["low"], spec["high"], bool(spec.get("log")), spec.get("step")
        if isinstance(low, int) and isinstance(high, int) and not log:
            return trial.suggest_int(option, low, high, step=step or 1)
        return trial.suggest_float(option, float(low), float(high), log=log, step=step)
    raise UsageError(f"sweep space {option}: {spec!r}; give a list of values or {{low, high[, log: true]}}.")


def option_args(params: dict[str, Any]) -> list[str]:
    """`{"model.optimizer.lr": 0.01}` -> `["--model.optimizer.lr", "0.01"]`, in the order of the sweep file."""
    return [arg for option, value in params.items() for arg in (f"--{option}", json.dumps(value).strip('"'))]


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """A trial's console (its summary), kept for when it fails: the sweep prints one line a trial."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


class Objective:
    """One trial: an ordinary run with the trial's options; its value is `objective` from the run's `metrics.json`."""

    def __init__(self, name: str, args: list[str], space: dict[str, Any], objective: str, grid: bool) -> None:
        self.name, self.args, self.space, self.objective, self.grid = name, args, space, objective, grid

    def __call__(self, trial: optuna.Trial) -> float:
        params = {option: suggest(trial, option, spec, self.grid) for option, spec in self.space.items()}
        pruning = Pruning(trial)
        status = 0
        with captured() as console:
            try:
                cli = train([*self.args, *option_args(params)], name=self.name, callbacks=[pruning])
                # A signal after the run's last epoch leaves that run finished; the sweep still stops after it.
                heard = next(c.signal for c in cli.trainer.callbacks if isinstance(c, GracefulStop))
                SIGNALS.signum = SIGNALS.signum or heard
            except SystemExit as exit_:  # 1: diverged; 2: a mistake in the options; 128 + n: a signal
                status = exit_.code if isinstance(exit_.code, int) else 2
        if status >= 128:  # Ctrl-C or SIGTERM stopped the run: the sweep stops; run again, it runs this point again
            raise Stopped(status)
        if status not in (0, 1) or pruning.run_dir is None:  # a value the run refused: the sweep stops
            raise UsageError(f"trial {trial.number} ({' '.join(option_args(params))}): {said(console.getvalue())}")
        run_dir = pruning.run_dir
        metrics = json.loads((run_dir / "metrics.json").read_text())
        value = metrics.get(self.objective)
        trial.set_user_attr("run", str(run_dir))
        trial.set_user_attr("stop_reason", metrics["stop_reason"])
        trial.set_user_attr("stable_lr", metrics.get("stable_lr"))
        trial.set_user_attr("diverged", metrics["diverged"] is not None)
        trial.set_user_attr("best_line", (metrics["closed_form"] or {}).get(self.objective))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("value", value if isinstance(value, int | float) and math.isfinite(value) else None)
        shown = ", ".join(f"{option.split('.')[-1]} {chosen}" for option, chosen in params.items())
        result = "pruned" if metrics["diverged"] or pruning.stopped_because else f"{self.objective} {fmt(value)}"
        print(f"trial {trial.number:>3}  {shown}: {result}, {metrics['stop_reason']}  ({run_dir})")
        if metrics["diverged"] or pruning.stopped_because:
            raise optuna.TrialPruned(metrics["stop_reason"])
        if not isinstance(value, int | float):
            raise UsageError(f"objective {self.objective}: metrics.json has no number by that name ({value!r}).")
        return float(value)


def said(console: str) -> str:
    """The error a run printed, without its `error: `."""
    lines = console.strip().splitlines() or ["failed"]
    return next((line for line in lines if line.startswith("error: ")), lines[-1]).removeprefix("error: ")


def check_options(args: list[str]) -> dict[str, Any]:
    """A mistake in the trials' options (a misspelt option, a wrong type) ends the sweep before its first trial.

    Returns the trials' data options, as the run would take them.
    """
    status = 0
    with captured() as console:
        try:
            train([*args, "--print_config"])
        except SystemExit as exit_:
            status = exit_.code
    if status >= 128:  # Ctrl-C or SIGTERM while checking: the sweep stops before it begins
        raise Stopped(status)
    if status:
        raise UsageError(f"the trials' options: {said(console.getvalue())}")
    # The readings too: a split the CSV cannot give (too few rows held out) is refused only once they are read.
    data = yaml.safe_load(console.getvalue())["data"]
    try:
        TemperatureDataModule(**data).load()
    except UsageError as refused:
        raise UsageError(f"the trials' options: {refused}") from None
    return data


def fmt(value: Any) -> str:
    """A number as the console shows losses, or whatever else it is."""
    return f"{value:.6g}" if isinstance(value, int | float) else str(value)


def storage_for(url: str) -> RDBStorage:
    """The study's database, with heartbeats: a trial of a killed worker is failed after 3 silent beats and retried."""
    if not url.startswith("sqlite:///"):
        return heartbeat_storage(url)
    database = Path(url.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    # Workers started at the same moment would each create the tables (Optuna does not guard that step): one at a
    # time, and the next finds them made.
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return heartbeat_storage(url)


def heartbeat_storage(url: str) -> RDBStorage:
    """`RDBStorage` of `url`, or one line saying why it cannot be opened."""
    with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8; the pinned version fixes them
        warnings.filterwarnings(
            "ignore", message=r"RetryHeartbeatStaleTrialCallback is experimental", category=ExperimentalWarning
        )
        warnings.filterwarnings(
            "ignore",
            message=r"Argument ``(heartbeat_interval|grace_period|heartbeat_stale_trial_callback)``",
            category=ExperimentalWarning,
        )
        try:
            return RDBStorage(
                url,
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=3 * HEARTBEAT_S,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
        except (SQLAlchemyError, ImportError, ValueError) as error:  # a URL it cannot parse, a driver not installed
            reason = str(error).splitlines()[0]
            raise UsageError(f"--storage {url}: {reason}; e.g. sqlite:///lightning_logs/<name>/optuna.db.") from None


def run(
    name: str,
    space: dict[str, Any],
    args: list[str] | None = None,
    sampler: str = "grid",
    trials: int | None = None,
    objective: str = "best_loss",
    pruner: dict[str, Any] | None = None,
    figure: dict[str, Any] | None = None,
    storage: str | None = None,
) -> optuna.Study:
    """Run (or resume, or join) the study `name` until it has `trials` finished trials, or its whole grid."""
    grid = sampler == "grid"
    if not space:
        raise UsageError("sweep space: empty; name at least one option to vary, e.g. model.optimizer.lr: [0.1, 0.01].")
    if grid:
        points = {option: values(option, spec) for option, spec in space.items()}
        chosen = optuna.samplers.GridSampler(points, seed=0)
        trials = math.prod(map(len, points.values()))
    else:
        chosen = optuna_class(optuna.samplers, sampler)(seed=0)
        if trials is None:
            raise UsageError(f"sampler {sampler}: give the number of trials, e.g. 'trials: 20'.")
    pruned_by = optuna_class(optuna.pruners, (pruner or {}).get("name", "NopPruner"))
    try:
        pruned_by = pruned_by(**{k: v for k, v in (pruner or {}).items() if k != "name"})
    except (TypeError, ValueError) as error:
        raise UsageError(f"pruner {pruned_by.__name__}: {error}") from None
    if objective not in NUMBERS:
        raise UsageError(f"objective {objective}: not a number of metrics.json; choose one of {', '.join(NUMBERS)}.")
    if figure:
        check_figure(figure, space)
    # Before anything is written: each option at the ends of its range (every choice of a list), the others at
    # their first value.
    reached = {option: reach(option, spec, grid) for option, spec in space.items()}
    first = {option: ends[0] for option, ends in reached.items()}
    tried = {json.dumps(first)}
    splits = [check_options([*(args or []), *option_args(first)])["val_fraction"]]
    for option, ends in reached.items():
        for value in ends:
            if json.dumps(point := {**first, option: value}) not in tried:
                tried.add(json.dumps(point))
                splits.append(check_options([*(args or []), *option_args(point)])["val_fraction"])
    if objective == "val_loss" and not any(splits):
        raise UsageError("objective val_loss: the trials hold out no validation rows; choose train_loss or best_loss.")
    if SIGNALS.signum is not None:  # heard while checking
        raise Stopped(128 + SIGNALS.signum)
    url = storage or f"sqlite:///lightning_logs/{name}/optuna.db"
    study = optuna.create_study(
        study_name=name, storage=storage_for(url), sampler=chosen, pruner=pruned_by, load_if_exists=True
    )
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9, as heartbeats are
        warnings.filterwarnings("ignore", message=r".*fail_stale_trials is experimental", category=ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a killed worker's trial goes back on the queue
    if grid:  # the grid's points that no trial has finished or is running, whatever else the study holds
        done = [GridTaken(points), SIGNALS]
        done[0].retry_failed(study)
        left = len(done[0].points - done[0].taken(study, (*FINISHED, TrialState.RUNNING)))
    else:  # a sampler's trials until `trials` have finished
        done = [optuna.study.MaxTrialsCallback(trials, states=FINISHED), SIGNALS]
        left = trials - len(study.get_trials(deepcopy=False, states=FINISHED))
    if left > 0:
        objective_ = Objective(name, list(args or []), space, objective, grid)
        print(f"Sweep {name}: {left} of {trials} trials to run, study in {url}")
        study.optimize(objective_, callbacks=done, gc_after_trial=True)
    else:
        print(f"Sweep {name}: all {trials} trials finished or running, study in {url}")
    if figure and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        draw(study, name, objective, **figure)
    return study


class GridTaken:
    """Stops a worker once every point of the grid is finished or running in another worker, and none waits.

    Optuna's grid sampler would rather run a point that another worker is still running a second time.
    """

    def __init__(self, points: dict[str, list[Any]]) -> None:
        self.options = list(points)
        self.points = set(itertools.product(*points.values()))

    def taken(self, study: optuna.Study, states: tuple[TrialState, ...]) -> set[tuple[Any, ...]]:
        """The points of the trials in these states."""
        trials = study.get_trials(deepcopy=False, states=states)
        return {tuple(t.params.get(option) for option in self.options) for t in trials}

    def retry_failed(self, study: optuna.Study) -> None:
        """Put back on the queue each point whose trial failed (a signal, a refused value) and none has finished since.

        The grid sampler counts a failed trial's point as visited; a retry keeps the point and runs it again.
        """
        pending = self.taken(study, (*FINISHED, TrialState.RUNNING, TrialState.WAITING))
        for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            point = tuple(trial.params.get(option) for option in self.options)
            if point in self.points and point not in pending:
                with warnings.catch_warnings():  # "experimental" since Optuna 2.8; the pinned version fixes it
                    warnings.filterwarnings("ignore", message="RetryHeartbeat", category=ExperimentalWarning)
                    RetryHeartbeatStaleTrialCallback(max_retry=None)(study, trial)
                pending.add(point)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting and self.points <= self.taken(study, (*FINISHED, TrialState.RUNNING)):
            study.stop()


def optuna_class(module: Any, name: str) -> Any:
    """`optuna.samplers.TPESampler` from its name, or one line saying what the name could be."""
    if not isinstance(getattr(module, name, None), type):
        raise UsageError(f"{name}: not a class of {module.__name__}, e.g. {', '.join(module.__all__[:3])}.")
    return getattr(module, name)


def check_figure(figure: dict[str, Any], space: dict[str, Any]) -> None:
    """The sweep file's `figure:` checked before any trial: its options, and `x` and `by` among the varied ones."""
    try:
        inspect.signature(draw).bind(None, "name", "objective", **figure)
    except TypeError as error:
        raise UsageError(f"figure: {error}; it takes x, by, labels and title.") from None
    for key in ("x", "by"):
        if figure[key] not in space:
            raise UsageError(f"figure: {key} is {figure[key]!r}, not an option of the sweep's space: {list(space)}.")


def draw(
    study: optuna.Study,
    name: str,
    objective: str,
    x: str,
    by: str,
    labels: dict | None = None,
    title: str | None = None,
) -> Path:
    """The sweep's figure into `lightning_logs/<name>/<name>.png` and TensorBoard (`lightning_logs/<name>/sweep`)."""
    from torch.utils.tensorboard import SummaryWriter

    from thermometer.report.figures import PNG, add_image, pixels, sweep_figure

    finished = study.get_trials(deepcopy=False, states=FINISHED)
    image = PNG.of(pixels(sweep_figure(finished, x, by, objective, labels or {}, title)))
    path = Path("lightning_logs", name, f"{name}.png")
    atomic.replace(path, lambda file: file.write(image), mode="wb")
    with SummaryWriter(str(path.parent / "sweep")) as writer:
        add_image(writer, f"sweep/{name}", image, len(finished))  # before views/, by name
    print(f"Figure:       {path}")
    return path


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: the sweep stops, with exit status 128 + the signal's number."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BetweenTrials:
    """Ctrl-C or SIGTERM outside a trial's run ends the sweep after the trial, never half-way through Optuna's code.

    A run listens for the signals itself while it trains (and then stops at the end of an epoch).
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def listen(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.heard)

    def heard(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.signum is not None:
            study.stop()


SIGNALS = BetweenTrials()


def main(argv: list[str] | None = None) -> optuna.Study:
    """`python scripts/sweep.py --config configs/sweeps/learning_rate.yaml`: one clear line and exit 2 for a mistake."""
    parser = ArgumentParser(prog="sweep.py", description=__doc__.splitlines()[0], default_config_files=[])
    parser.add_argument(
        "--config", action=ActionConfigFile, help="the sweep file, e.g. configs/sweeps/learning_rate.yaml"
    )
    parser.add_argument(
        "--name", type=str | None, default=None, help="the study and its runs' directory; the file's stem"
    )
    parser.add_function_arguments(run, skip={"name"})
    try:
        config = parser.parse_args(argv)
        files = [str(path) for path in config.pop("config") or []]
        name = config.pop("name") or (Path(files[-1]).stem if files else "sweep")
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line a trial, ours, with its run directory
        SIGNALS.signum = None
        SIGNALS.listen()
        study = run(name, **config.as_dict())
        if SIGNALS.signum is not None:
            raise Stopped(128 + SIGNALS.signum)
        return study
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except Stopped as stopped:
        print("\nSweep stopped; the same command resumes it, without repeating finished trials.", file=sys.stderr)
        raise SystemExit(stopped.status) from None
