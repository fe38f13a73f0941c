"""Sweeps: an Optuna study over any options of the training command, each trial an ordinary run.

A sweep file (`configs/sweeps/*.yaml`) names the options to vary and how to search them (`spec`); every trial is a
run of the training command in this process (`trials`), with its own run directory `lightning_logs/<sweep>/version_N`,
so that TensorBoard's HParams tab compares the trials. The study is kept in a database (`storage`): a stopped sweep
resumes where it stopped, and several workers share it. Once no trial is running, the sweep draws its `figure`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import optuna
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser
from optuna.trial import TrialState

from thermometer.errors import UsageError
from thermometer.sweep.figure import draw
from thermometer.sweep.spec import Sweep, in_directory
from thermometer.sweep.storage import FINISHED, GridTaken, open_study
from thermometer.sweep.trials import BetweenTrials, Objective, Stopped


def run(sweep: Sweep, signals: BetweenTrials) -> optuna.Study:
    """Run (or resume, or join) the sweep's study until it has all its trials finished, each point of its grid once.

    Args:
        sweep: the sweep, checked here before anything is written.
        signals: the listener for Ctrl-C and SIGTERM, which stops the study between trials.
    """
    sweep.check()
    signals.check()  # heard while checking
    study = open_study(sweep.name, sweep.url, sweep.optuna_sampler(), sweep.optuna_pruner())
    trials = sweep.total()
    if sweep.grid:  # the grid's points that no trial has finished or is running, whatever else the study holds
        done: GridTaken | optuna.study.MaxTrialsCallback = GridTaken(sweep.points())
        done.retry_failed(study)
        left = done.left(study)
    else:  # a sampler's trials until `trials` have finished
        done = optuna.study.MaxTrialsCallback(trials, states=FINISHED)
        left = trials - len(study.get_trials(deepcopy=False, states=FINISHED))
    if left > 0:
        print(f"Sweep {sweep.name}: {left} of {trials} trials to run, study in {sweep.url}")
        study.optimize(Objective(sweep, signals), callbacks=[done, signals], gc_after_trial=True)
    else:
        print(f"Sweep {sweep.name}: all {trials} trials finished or running, study in {sweep.url}")
    if sweep.figure and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        draw(study.get_trials(deepcopy=False, states=FINISHED), sweep.name, sweep.objective, **sweep.figure)
    return study


def parser() -> ArgumentParser:
    """The sweep's command line: a sweep file, and each of its settings as an option of its own."""
    parser = ArgumentParser(prog="sweep.py", description=__doc__.splitlines()[0], default_config_files=[])
    parser.add_argument(
        "--config", action=ActionConfigFile, help="the sweep file, e.g. configs/sweeps/learning_rate.yaml"
    )
    parser.add_argument(
        "--name", type=str | None, default=None, help="the study and its runs' directory; the file's stem"
    )
    parser.add_class_arguments(Sweep, skip={"name"})
    return parser


def files_resolved(argv: list[str]) -> list[str]:
    """`argv` with each sweep file's `args` given again right after the file, their relative files found from it.

    `--args [--config, ../book/01_diverge.yaml]` in `configs/sweeps/x.yaml` is `configs/book/01_diverge.yaml`, as
    jsonargparse finds a path inside a config file; `--args` on the command line is taken as it is, from here.
    """
    resolved = []
    for index, arg in enumerate(argv):
        resolved.append(arg)
        if arg.startswith("--config="):
            file = Path(arg.removeprefix("--config="))
        elif index and argv[index - 1] == "--config":
            file = Path(arg)
        else:
            continue
        try:
            settings = yaml.safe_load(file.read_text()) if file.is_file() else None
        except (OSError, ValueError, yaml.YAMLError):  # no such file, not UTF-8, not YAML: the parser says which
            continue
        args = settings.get("args") if isinstance(settings, dict) else None
        if isinstance(args, list) and all(isinstance(a, str) for a in args):  # else the parser says what is wrong
            resolved += ["--args", json.dumps(in_directory(args, file.parent))]
    return resolved


def main(argv: list[str] | None = None) -> optuna.Study:
    """`python scripts/sweep.py --config configs/sweeps/learning_rate.yaml`: one clear line and exit 2 for a mistake.

    From the shell (`argv` None), a net given by path imports from the working directory as in `train.py`:
    `--model.net my_nets.TinyNet` finds `my_nets.py` there.
    """
    if argv is None:
        sys.path.insert(0, os.getcwd())
    given = sys.argv[1:] if argv is None else argv
    signals = BetweenTrials()
    try:
        config = parser().parse_args(files_resolved(given))
        files = [str(path) for path in config.pop("config") or []]
        name = config.pop("name") or (Path(files[-1]).stem if files else "sweep")
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line a trial, ours, with its run directory
        signals.listen()
        study = run(Sweep(name, **config.as_dict()), signals)
        signals.check()
        return study
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except Stopped as stopped:
        print("\nSweep stopped; the same command resumes it, without repeating finished trials.", file=sys.stderr)
        raise SystemExit(stopped.status) from None
