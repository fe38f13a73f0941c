"""Figure 5.14 of the book from real runs: the four scenarios' training and validation losses, in four panels.

    python scripts/figure_5_14.py            # the runs lightning_logs/5_14_A ... 5_14_D, into docs/figure_5_14.png
    python scripts/figure_5_14.py --train    # train the scenarios missing there first (the README's commands)

Each scenario is a run named `5_14_<letter>` (`--name`); the latest finished one of each name is drawn, from its
TensorBoard events.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ROOT = Path(__file__).parents[1]
SCENARIOS = {
    "A": (
        "neither falls: not learning",
        ["--config", "configs/book/05_split.yaml", "--model.optimizer.lr", "1e-7", "--trainer.max_epochs", "300"],
    ),
    "B": ("training falls, validation rises: overfitting", ["--config", "configs/book/07_overfit.yaml"]),
    "C": ("both fall together: the ideal", ["--data.val_fraction", "0.4", "--data.split_seed", "198"]),
    "D": ("validation falls but stays above training: acceptable", []),
}
"""Each scenario's letter: what it shows, and the options of its run (paths from the repository's root)."""


def name(letter: str) -> str:
    """The run's name of a scenario: `5_14_A`."""
    return f"5_14_{letter}"


def command(letter: str) -> str:
    """The README's command that makes a scenario's run."""
    return " ".join(["python scripts/train.py --name", name(letter), *SCENARIOS[letter][1]])


class Missing(Exception):
    """A scenario has no finished run: what to run, in one line."""


def latest_run(logs: Path, letter: str) -> Path:
    """The latest finished run (one with its `metrics.json`) of a scenario, `lightning_logs/5_14_A/version_N`."""
    runs = [run for run in (logs / name(letter)).glob("version_*") if (run / "metrics.json").is_file()]
    if not runs:
        raise Missing(
            f"{logs / name(letter)}: no finished run of scenario {letter}; make it with `{command(letter)}`, "
            "or run this script with --train."
        )
    return max(runs, key=lambda run: int(run.name.removeprefix("version_")))


def losses(run: Path) -> dict[str, tuple[list[int], list[float]]]:
    """`train/loss` and `val/loss` of a run by epoch, as TensorBoard has them (every point, resumes included)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})  # 0: every point
    events.Reload()
    curves = {}
    for tag in ("train/loss", "val/loss"):
        points = events.Scalars(tag)
        curves[tag] = ([point.step for point in points], [point.value for point in points])
    return curves


def draw(runs: dict[str, Path]) -> Figure:
    """Two by two panels, one a scenario: training loss solid, validation loss dashed, its lowest point marked.

    The panels share their log-scale loss axis, so that they compare: A stays where the others start.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(10, 7.5), dpi=100, layout="constrained")
    axes = figure.subplots(2, 2, sharey=True).flatten()
    for ax, (letter, run) in zip(axes, runs.items(), strict=True):
        curves = losses(run)
        ax.plot(*curves["train/loss"], color="C0", label="training loss")
        ax.plot(*curves["val/loss"], color="C1", ls="--", label="validation loss")
        best, loss = min(zip(*curves["val/loss"], strict=True), key=lambda point: point[1])
        ax.plot(best, loss, "o", color="C1", label=f"lowest validation loss, epoch {best}")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
        ax.set_title(f"{letter}: {SCENARIOS[letter][0]}", fontsize=10)
        ax.set_xlabel("epoch")
        if letter in "AC":  # the left column: the panels share their loss axis
            ax.set_ylabel("loss (MSE), log scale")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="center right", title=str(run.relative_to(run.parents[2])), title_fontsize=8)
    figure.suptitle("Figure 5.14's four scenarios, from real runs: train/loss and val/loss each epoch", fontsize=12)
    return figure


def main(argv: list[str] | None = None) -> Figure:
    """Draw the figure from the four runs (trained first with `--train`) into a PNG, written whole or not at all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(), help="where the runs were made: its lightning_logs/")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "figure_5_14.png", help="the PNG")
    parser.add_argument("--train", action="store_true", help="train the scenarios that have no finished run")
    args = parser.parse_args(argv)
    from thermometer.report.console import shown
    from thermometer.run import atomic

    logs, runs = args.root / "lightning_logs", {}
    for letter, (_, options) in SCENARIOS.items():
        try:
            runs[letter] = latest_run(logs, letter)
        except Missing as missing:
            if not args.train:
                print(f"error: {missing}", file=sys.stderr)
                raise SystemExit(2) from None
            from thermometer.cli import main as train

            found = [str(ROOT / option) if option.endswith(".yaml") else option for option in options]  # configs
            train(["--name", name(letter), *found, "--trainer.default_root_dir", str(args.root)])
            runs[letter] = latest_run(logs, letter)
    figure = draw(runs)
    atomic.replace(args.output, lambda file: figure.savefig(file, format="png"), mode="wb")
    print(f"Figure:       {shown(args.output)}")
    return figure


if __name__ == "__main__":
    main()
