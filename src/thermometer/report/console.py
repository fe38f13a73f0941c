"""The summary as a user reads it on the console: what was learned, how well, why it stopped, where it all is."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thermometer.report.diagnosis import valley

RUN_FILES = ("metrics.json", "fit.png", "loss_landscape.png", "checkpoints/", "config.yaml")  # listed if written


def result_lines(summary: dict[str, Any]) -> list[str]:
    """What was learned, how well, and why it stopped."""
    line, optimum, trained = summary["closed_form"], summary["optimum"], summary["trained"]
    lines = []
    if summary["equation"]:
        lines.append(f"Learned:      {summary['equation']}")
    if trained and (trained["normalization"] or not summary["equation"]):
        with_ = f"   with {', '.join(trained['normalization'])}" if trained["normalization"] else ""
        lines.append(f"Trained as:   {trained['equation']}{with_}")
    if not trained:
        lines.append(f"Net:          {summary['net']}, not linear in its parameters: no equation to print")
    reference = optimum or line
    what = "optimum" if optimum else "best line"
    if optimum:
        lines.append(f"Closed form:  {optimum['equation']}   ({optimum['method']}, same rows)")
    difference = summary["train_loss"] - reference["train_loss"]
    # An optimum is not beaten (a gap); a net other than a line may beat the best line.
    gap = f"gap {difference:.2g}" if optimum else f"{abs(difference):.2g} {'below' if difference < 0 else 'above'} it"
    lines.append(f"Train loss:   {summary['train_loss']:.6g}   ({what} {reference['train_loss']:.6g}, {gap})")
    if summary["val_loss"] is not None:
        lines.append(f"Val loss:     {summary['val_loss']:.6g}   ({what}'s {reference['val_loss']:.6g})")
    for stage in ("train", "val"):
        if measured := [f"{k.split('/', 1)[1]} {v:.4g}" for k, v in summary.items() if k.startswith(f"{stage}/")]:
            lines.append(f"{stage.capitalize() + ' metrics:':<15}{', '.join(measured)}")
    if not optimum or optimum["equation"] != line["equation"]:
        val = f", val {line['val_loss']:.6g}" if line["val_loss"] is not None else ""
        lines.append(f"Best line:    train {line['train_loss']:.6g}{val}   ({line['equation']}, least squares)")
    last = summary["last_epoch"]
    if "train/loss" in last and f"{last['train/loss']:.6g}" != f"{summary['train_loss']:.6g}":
        lines.append(
            f"Last epoch:   train/loss {last['train/loss']:.6g}   (logged as it trained: before the epoch's step, in "
            "training mode; the book prints this one)"
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
    if summary["stable_lr"] is not None:
        lines.append(
            f"Learning rate: {summary['optimizer']} lr {summary['lr']:g}; stable below {summary['stable_lr']:.4g}"
            f" (2/λ_max), {valley(summary['condition_number'])}"
        )
    if summary["not_converged"]:
        lines.append(f"Not converged: {summary['not_converged']}")
    lines.append(f"Stopped:      after {summary['epochs']} epochs: {summary['stop_reason']}")
    return lines


def shown(path: str | Path) -> Path:
    """A path as a user here would type it: relative to the working directory when it lies below it."""
    relative = os.path.relpath(path)
    return Path(path if relative.startswith("..") else relative)


def resume_command(
    run_dir: Path, last: str | Path, options: Sequence[str] = (), program: str = "python scripts/train.py"
) -> str:
    """The command that resumes the run from `last`, with the options this resume was given, if it was one.

    `program` is the command as it was typed here. `config.yaml` is the first run's: without the options, the next
    resume would go back to its values.
    """
    command = f"{program} fit --config {shown(Path(run_dir) / 'config.yaml')} --ckpt_path {shown(last)}"
    return " ".join([command, *map(shlex.quote, options)])


def print_summary(
    summary: dict[str, Any],
    run_dir: Path,
    logs: Path,
    options: Sequence[str] = (),
    program: str = "python scripts/train.py",
) -> None:
    """The summary, the run's files, how to watch it, and how to resume it if it was stopped."""
    run_dir, logs = Path(run_dir), shown(logs)
    where = [
        f"Run:          {shown(run_dir)}   ({', '.join(n for n in RUN_FILES if (run_dir / n.rstrip('/')).exists())})",
        f"Watch:        tensorboard --logdir {logs}",
    ]
    if summary["diverged"]:
        print("\n".join(["", f"Stopped:      after {summary['epochs']} epochs: {summary['stop_reason']}", *where]))
        print(f"error: {summary['diverged']}", file=sys.stderr)
        return
    if summary["interrupted"]:
        resume = resume_command(run_dir, summary["last_checkpoint"], options, program)
        where.append(f"Resume:       {resume}   (continues in {shown(run_dir)})")
    print("\n".join(["", *result_lines(summary), *where]))
