"""A sweep file: the options every trial takes, the space of options to vary, how to search it and what to minimise.

Everything in it is checked before any trial runs or anything is written, each mistake in one line: the space, the
sampler, the pruner, the figure, the storage, and the trials themselves, each built as it will run (its net, data
and trainer) at the ends of the space: their options, the objective their `metrics.json` will have, one process.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from lightning.pytorch.strategies import ParallelStrategy
from optuna.exceptions import ExperimentalWarning

from thermometer.cli.config_files import config_files
from thermometer.cli.main import SUBCOMMANDS, build
from thermometer.errors import UsageError
from thermometer.report.summary import NUMBERS, objectives
from thermometer.sweep.figure import draw
from thermometer.sweep.storage import SeededByTrial, check_storage

PATH_OPTIONS = ("--config", "--data.csv_path", "--data.predict_path")
"""The trials' options whose values are files: in a sweep file, relative to the file's own directory."""
MAX_POINTS = 10_000
"""The most values a range of the space gives, and the most points a grid has: more is a mistake, not a sweep."""
SEED_MAX = 2**32 - 1
"""numpy's, which Optuna's samplers draw with."""


@dataclass
class Sweep:
    """A sweep: an Optuna study over options of the training command, each trial an ordinary run.

    Args:
        name: the study, and its runs' directory `lightning_logs/<name>`.
        space: the options to vary, each a list of values or a range `{low, high, num[, log: true]}` (a grid's
            points), or `{low, high[, log: true][, step]}` for a sampler.
        args: the options of every trial, as the training command takes them; the trial's own come after.
        sampler: `grid` for every combination of the space, or a class of `optuna.samplers` such as TPESampler.
        trials: how many trials a sampler runs until they have finished; a grid runs each point.
        objective: the number of each trial's `metrics.json` to minimise.
        pruner: a class of `optuna.pruners` and its arguments, e.g. `{name: MedianPruner, n_warmup_steps: 100}`.
        figure: the objective against one option, a curve for each value of another: `{x, by[, labels, title]}`.
        storage: the study's database URL; `sqlite:///lightning_logs/<name>/optuna.db` when none is given.
        seed: the sampler's seed: each trial draws with `seed` + its number, so that a worker alone draws the same
            points every time, and workers sharing a study draw different ones.
    """

    name: str
    space: dict[str, Any]
    args: list[str] = field(default_factory=list)
    sampler: str = "grid"
    trials: int | None = None
    objective: str = "best_loss"
    pruner: dict[str, Any] | None = None
    figure: dict[str, Any] | None = None
    storage: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.args = self.args or []  # `args:` with nothing after it: none

    @property
    def grid(self) -> bool:
        """Whether the trials are the grid's points, each once."""
        return self.sampler == "grid"

    @property
    def url(self) -> str:
        """The study's database."""
        return self.storage or f"sqlite:///lightning_logs/{self.name}/optuna.db"

    def points(self) -> dict[str, list[Any]]:
        """The grid's values of each option."""
        return {option: values(option, spec) for option, spec in self.space.items()}

    def total(self) -> int:
        """How many trials the sweep has: the grid's points, or the sampler's `trials`."""
        if self.grid:
            points = math.prod(map(len, self.points().values()))
            if points > MAX_POINTS:
                raise UsageError(f"sweep space: a grid of {points} points; give at most {MAX_POINTS}.")
            return points
        if self.trials is None:
            raise UsageError(f"sampler {self.sampler}: give the number of trials, e.g. 'trials: 20'.")
        if self.trials < 1:
            raise UsageError(f"trials: {self.trials}; give 1 or more, e.g. 'trials: 20'.")
        return self.trials

    def optuna_sampler(self) -> optuna.samplers.BaseSampler:
        """Optuna's sampler of the trials' options, seeded by the trial (see `SeededByTrial`)."""
        if self.grid:
            return optuna.samplers.GridSampler(self.points(), seed=self.seed)
        kind = optuna_class(optuna.samplers, self.sampler, "sampler")

        def sampler(seed: int) -> optuna.samplers.BaseSampler:
            with warnings.catch_warnings():  # that a sampler is "experimental": Optuna's notice, not the user's
                warnings.simplefilter("ignore", ExperimentalWarning)
                return kind(seed=seed)

        try:
            sampler(self.seed)
        except (TypeError, ValueError) as error:
            raise UsageError(f"sampler {self.sampler}: {error}; give grid, or one such as TPESampler.") from None
        if kind is optuna.samplers.QMCSampler:  # its points are drawn by trial number already
            return sampler(self.seed)
        return SeededByTrial(sampler, self.seed)

    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        """Optuna's pruner, with the sweep file's arguments; none prunes (beyond divergence) by default."""
        settings = dict(self.pruner or {})
        pruner = optuna_class(optuna.pruners, settings.pop("name", "NopPruner"), "pruner")
        try:
            return pruner(**settings)
        except (TypeError, ValueError) as error:
            raise UsageError(f"pruner {pruner.__name__}: {error}") from None

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's value of each option of the space."""
        return {option: suggest(trial, option, spec, self.grid) for option, spec in self.space.items()}

    def check(self) -> None:
        """Refuse a mistake in the sweep in one line (`UsageError`), before anything is written.

        The trials' options are checked as each run would check them: each option at the ends of its range (at
        every choice of a list), the others at their first value, with the readings loaded.
        """
        if not self.space:
            raise UsageError(
                "sweep space: empty; name at least one option to vary, e.g. model.optimizer.lr: [0.1, 0.01]."
            )
        if self.name in ("", ".", "..") or "/" in self.name or "\\" in self.name:
            raise UsageError(f"--name {self.name!r}: the name of a directory, e.g. learning_rate.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= SEED_MAX:
            raise UsageError(f"seed: {self.seed}; give a whole number from 0 to {SEED_MAX}.")
        if not self.grid:
            optuna_class(optuna.samplers, self.sampler, "sampler")
        self.total()  # these three refuse a mistake in the trials, the sampler and the pruner
        self.optuna_sampler()
        self.optuna_pruner()
        check_storage(self.url)
        if self.objective not in NUMBERS and not self.objective.startswith(("train/", "val/")):
            raise UsageError(
                f"objective {self.objective}: not a number of metrics.json; choose one of {', '.join(NUMBERS)}, or a "
                "metric such as val/MeanAbsoluteError."
            )
        if self.figure:
            check_figure(self.figure, self.space)
        # Each option at the ends of its range (every choice of a list), the others at their first value.
        reached = {option: reach(option, spec, self.grid) for option, spec in self.space.items()}
        first = {option: ends[0] for option, ends in reached.items()}
        points = [first, *({**first, option: value} for option, ends in reached.items() for value in ends)]
        unique = {json.dumps(point): point for point in points}.values()
        for point in unique:
            known = check_trial([*self.args, *option_args(point)])
            if known.get(self.objective, "no number by that name") is not None:
                why = known.get(self.objective, "metrics.json has no number by that name")
                present = ", ".join(name for name, absent in known.items() if absent is None)
                raise UsageError(
                    f"objective {self.objective}: {why}, at {' '.join(option_args(point))}; metrics.json has {present}."
                )


def in_directory(args: list[str], directory: Path) -> list[str]:
    """`args` with the relative files of `PATH_OPTIONS` taken from `directory`, as jsonargparse takes a config's paths.

    `["--config", "../book/01_diverge.yaml"]` in `configs/sweeps/` -> `["--config", "configs/book/01_diverge.yaml"]`.
    """
    resolved = []
    for index, arg in enumerate(args):
        option, equals, value = arg.partition("=")
        if equals and option in PATH_OPTIONS:
            resolved.append(f"{option}={file_in(directory, value)}")
        elif index and args[index - 1] in PATH_OPTIONS:
            resolved.append(file_in(directory, arg))
        else:
            resolved.append(arg)
    return resolved


def file_in(directory: Path, value: str) -> str:
    """A relative file's path from `directory`; anything else (null, inline YAML, a URL, an absolute path) as it is."""
    if value in ("", "null") or ":" in value or value.startswith(("{", "~")) or Path(value).is_absolute():
        return value
    return os.path.normpath(directory / value)


def values(option: str, spec: Any) -> list[Any]:
    """The grid's values of one option: a list as it is, or `{low, high, num, log}` as `num` points."""
    if isinstance(spec, list) and spec:
        if not all(v is None or isinstance(v, bool | int | float | str) for v in spec):
            raise UsageError(
                f"sweep space {option}: {spec!r}; each value is a number, a word, true, false or null (a class by "
                "its name, e.g. MLP)."
            )
        return spec
    if (
        isinstance(spec, dict)
        and {"low", "high", "num"} <= spec.keys()
        and spec.keys() <= {"low", "high", "num", "log"}
    ):
        low, high, num = spec["low"], spec["high"], spec["num"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
            raise UsageError(f"sweep space {option}: {spec!r}; low and high are numbers.")
        if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= MAX_POINTS:
            raise UsageError(f"sweep space {option}: {spec!r}; num is a whole number from 1 to {MAX_POINTS}.")
        if spec.get("log") and min(low, high) <= 0:
            raise UsageError(f"sweep space {option}: {spec!r}; give a log range above 0.")
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
            with warnings.catch_warnings():  # a step the range does not hold: Optuna warns and shrinks the range
                warnings.filterwarnings("error", message=".*the range is not divisible by `step`", category=UserWarning)
                kind(low, high, log=bool(spec.get("log")), step=spec.get("step") or (1 if integers else None))
        except UserWarning:
            raise UsageError(
                f"sweep space {option}: {spec!r}: the step does not divide the range from low to high; give a step "
                "that does, or leave it out."
            ) from None
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


def check_trial(args: list[str]) -> dict[str, str | None]:
    """A trial's run made as the trial will make it, without training: a mistake in its options ends the sweep first.

    Returns what its `metrics.json` will hold: each number a sweep may minimise, None or why it is null (`objectives`).
    """
    check_args(args)
    try:
        cli = build(args)
    except UsageError as refused:
        raise UsageError(f"the trials' options: {refused}") from None
    trainer = cli.trainer
    processes = trainer.num_devices * trainer.num_nodes
    if processes > 1 or isinstance(trainer.strategy, ParallelStrategy):
        kind = type(trainer.strategy).__name__.removesuffix("Strategy")
        raise UsageError(
            f"the trials' options run {kind} on {processes} process{'es' if processes > 1 else ''}; a sweep runs each "
            "trial in one. To sweep on several GPUs or machines, start one worker on each, sharing one study: "
            "CUDA_VISIBLE_DEVICES=<n> python scripts/sweep.py --config <file> --storage <url> (docs/sweeps.md)."
        )
    return objectives(cli.model, cli.datamodule)


def check_args(args: list[str]) -> None:
    """Refuse what a trial's options cannot hold: a subcommand but `fit`, help, or a checkpoint to resume from.

    Every trial is a new run: `--ckpt_path` would put each one into that one run.
    """
    if args and args[0] in SUBCOMMANDS and args[0] != "fit":
        raise UsageError(f"the trials' options: {args[0]}: a trial trains (fit); leave the subcommand out.")
    asked = next((a for a in args if a in ("-h", "--help") or a.startswith("--print_config")), None)
    if asked:
        raise UsageError(f"the trials' options: {asked}: a trial trains; python scripts/train.py --help lists them.")
    resumed = any(a == "--ckpt_path" or a.startswith("--ckpt_path=") for a in args)
    for path in config_files(args):
        try:
            options = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):  # the trial's own checks say what is wrong with the file
            continue
        resumed = resumed or (isinstance(options, dict) and "ckpt_path" in options)
    if resumed:
        raise UsageError(
            "the trials' options: --ckpt_path: every trial would continue that one run, and a trial is a new run; "
            "leave it out (a stopped sweep resumes by its own command)."
        )


def optuna_class(module: Any, name: Any, setting: str) -> Any:
    """`optuna.samplers.TPESampler` from its name, or one line saying what the name could be."""
    if not isinstance(name, str) or not isinstance(getattr(module, name, None), type):
        examples = ", ".join(module.__all__[:3])
        raise UsageError(f"{setting} {name}: not a class of {module.__name__}, e.g. {examples}.")
    return getattr(module, name)


def check_figure(figure: dict[str, Any], space: dict[str, Any]) -> None:
    """The sweep file's `figure:` checked before any trial: its options, and `x` and `by` among the varied ones."""
    try:
        inspect.signature(draw).bind([], "name", "objective", **figure)
    except TypeError as error:
        raise UsageError(f"figure: {error}; it takes x, by, labels and title.") from None
    for key in ("x", "by"):
        if not isinstance(figure[key], str) or figure[key] not in space:
            raise UsageError(f"figure: {key} is {figure[key]!r}, not an option of the sweep's space: {list(space)}.")
    labels, title = figure.get("labels") or {}, figure.get("title")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise UsageError(f"figure: labels is {labels!r}; give each value of by its label, e.g. {{none: raw t_u}}.")
    if title is not None and not isinstance(title, str):
        raise UsageError(f"figure: title is {title!r}; give a line of text.")
