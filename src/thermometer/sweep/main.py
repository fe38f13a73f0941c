"""Sweeps: an Optuna study over any options of the training command, each trial an ordinary run.

A sweep file (`configs/sweeps/*.yaml`) names the options to vary and how to search them (`spec`); every trial is a
run of the training command in this process (`trials`), with its own run directory `lightning_logs/<sweep>/version_N`,
so that TensorBoard's HParams tab compares the trials. The study is kept in a database (`storage`): a stopped sweep
resumes where it stopped, and several workers share it. Once no trial is running, the sweep draws its `figure`; it
ends by naming its best trial and the command that repeats it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import sys
from argparse import ArgumentError
from dataclasses import fields
from pathlib import Path

import optuna
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser
from optuna.trial import TrialState

from thermometer.cli.config_files import check_config_files
from thermometer.cli.main import shown_program
from thermometer.errors import UsageError
from thermometer.report.summary import NUMBERS
from thermometer.sweep.figure import draw
from thermometer.sweep.spec import Sweep, in_directory, option_args
from thermometer.sweep.storage import FINISHED, GridTaken, open_study
from thermometer.sweep.trials import BetweenTrials, Objective, Stopped, fmt


def run(
    sweep: Sweep, signals: BetweenTrials, check: bool = False, program: str = "python scripts/train.py"
) -> optuna.Study | None:
    """Run (or resume, or join) the sweep's study until it has all its trials finished, each point of its grid once.

    Args:
        sweep: the sweep, checked here before anything is written.
        signals: the listener for Ctrl-C and SIGTERM, which stops the study between trials.
        check: only check the sweep: nothing is written or run (None).
        program: the training command, as the best trial's command repeats it.
    """
    sweep.check()
    signals.check()  # heard while checking
    if check:
        trials = sweep.total()
        print(f"Sweep {sweep.name}: checked, {trials} trial{'s' * (trials != 1)}, study in {sweep.url}; nothing ran.")
        return None
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
    print(best_trial(study, sweep, program))
    return study


def best_trial(study: optuna.Study, sweep: Sweep, program: str) -> str:
    """The study's best finished trial: its objective, its run directory, and the command that repeats it."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return "Best trial:   none; every finished trial was pruned or diverged"
    best = min(complete, key=lambda t: t.value)
    host = best.user_attrs.get("worker", "").rpartition(":")[0]
    elsewhere = f" on {host}" if host and host != socket.gethostname() else ""
    args = best.user_attrs.get("args") or [*sweep.args, *option_args(best.params)]
    run = f"{best.user_attrs.get('run')}{elsewhere}"
    return (
        f"Best trial:   {best.number}, {sweep.objective} {fmt(best.value)}, run {run}\n"
        f"Repeat it:    {program} {shlex.join(args)}"
    )


def train_program(script: str | None) -> str:
    """The training command beside the sweep's script, as typed here: `python scripts/train.py`."""
    if script is None or Path(script).name != "sweep.py":
        return "python scripts/train.py"
    return shown_program(str(Path(script).with_name("train.py")))


def parser() -> ArgumentParser:
    """The sweep's command line: a sweep file, and each of its settings as an option of its own."""
    parser = ArgumentParser(
        prog="sweep.py", description=__doc__.splitlines()[0], default_config_files=[], exit_on_error=False
    )
    parser.add_argument(
        "--config", action=ActionConfigFile, help="the sweep file, e.g. configs/sweeps/learning_rate.yaml"
    )
    parser.add_argument(
        "--name", type=str | None, default=None, help="the study and its runs' directory; the file's stem"
    )
    parser.add_argument(
        "--check", action="store_true", help="check the sweep and its trials' options, then stop: nothing is written"
    )
    parser.add_class_arguments(Sweep, skip={"name"})
    return parser


SETTINGS = {
    "space": "a mapping of options to values, e.g. {model.optimizer.lr: [0.1, 0.01]}",
    "args": 'a list of the trials\' options, numbers quoted, e.g. [--trainer.max_epochs, "40"]',
    "sampler": "grid, or the name of a class of optuna.samplers such as TPESampler",
    "trials": "a whole number, e.g. 20",
    "objective": f"one of the numbers of metrics.json, {', '.join(NUMBERS)}, or a metric such as val/R2Score",
    "pruner": "a mapping such as {name: MedianPruner, n_warmup_steps: 100}",
    "figure": "a mapping such as {x: model.optimizer.lr, by: model.normalize}",
    "storage": "a database URL such as sqlite:///lightning_logs/<name>/optuna.db",
    "seed": "a whole number, e.g. 0",
    "name": "a name, e.g. learning_rate",
}
"""What each setting of a sweep file takes."""


def plain(message: str) -> str:
    """The sweep parser's message, in one line that says what to change."""
    if unknown := re.search(r"Option '([^']+)' is not accepted", message):
        settings = ", ".join(f.name for f in fields(Sweep) if f.name != "name")
        return f"{unknown[1]}: not a setting of a sweep file; its settings are {settings}."
    if unknown := re.search(r"unrecognized arguments: (\S+)", message):
        return f"{unknown[1]}: not an option of sweep.py; python scripts/sweep.py --help lists them."
    if missing := re.search(r"the following arguments are required: (\S+)", message):
        return f"{missing[1]}: missing; give {SETTINGS.get(missing[1], 'it')}."
    if key := re.search(r'Parser key "([^"]+)"', message):
        value = re.findall(r"(?:Given value|Got value): (.*)$", message, re.MULTILINE)
        shown = f"{key[1]}: {value[-1]}" if value else key[1]
        return f"{shown}: expected {SETTINGS.get(key[1], 'another value')}."
    return " ".join(message.split())


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


def main(argv: list[str] | None = None) -> optuna.Study | None:
    """`python scripts/sweep.py --config configs/sweeps/learning_rate.yaml`: one clear line and exit 2 for a mistake.

    From the shell (`argv` None), a net given by path imports from the working directory as in `train.py`:
    `--model.net my_nets.TinyNet` finds `my_nets.py` there. With `--check`, the sweep is checked and nothing runs
    (None).
    """
    if argv is None:
        sys.path.insert(0, os.getcwd())
    given = sys.argv[1:] if argv is None else argv
    signals = BetweenTrials()
    signals.listen()
    try:
        check_config_files(given, "configs/sweeps/learning_rate.yaml", "space: {model.optimizer.lr: [0.1, 0.01]}")
        try:
            config = parser().parse_args(files_resolved(given))
        except ArgumentError as error:
            raise UsageError(plain(str(error))) from None
        files = [str(path) for path in config.pop("config") or []]
        name = config.pop("name") or (Path(files[-1]).stem if files else "sweep")
        check = config.pop("check")
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line a trial, ours, with its run directory
        program = train_program(sys.argv[0] if argv is None else None)
        study = run(Sweep(name, **config.as_dict()), signals, check, program)
        signals.check()
        return study
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except Stopped as stopped:
        print("\nSweep stopped; the same command resumes it, without repeating finished trials.", file=sys.stderr)
        raise SystemExit(stopped.status) from None
