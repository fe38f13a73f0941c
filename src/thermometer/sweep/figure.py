"""The sweep's figure: its objective against one option, a curve for each value of another, and the limits.

Drawn once the study has no trial running, into `lightning_logs/<sweep>/<sweep>.png` and TensorBoard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from thermometer.report.figures import PNG, VIEWS, add_image, pixels
from thermometer.run import atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def draw(
    trials: Sequence[optuna.trial.FrozenTrial],
    name: str,
    objective: str,
    x: str,
    by: str,
    labels: dict[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """The figure of the finished `trials` into `lightning_logs/<name>/<name>.png` and TensorBoard (`views/sweep`).

    Args:
        trials: the study's finished trials.
        name: the sweep's name.
        objective: the number of `metrics.json` the trials minimised.
        x: the option along the x axis (log scale).
        by: the option whose values each have a curve.
        labels: a curve's label for a value of `by`; `<by> <value>` otherwise.
        title: the figure's title; `<objective> of each trial against <x>` otherwise.
    """
    from torch.utils.tensorboard import SummaryWriter

    image = PNG.of(pixels(sweep_figure(trials, x, by, objective, labels or {}, title)))
    path = Path("lightning_logs", name, f"{name}.png")
    atomic.replace(path, lambda file: file.write(image), mode="wb")
    with SummaryWriter(str(path.parent / "sweep")) as writer:
        add_image(writer, f"{VIEWS}/sweep", image, len(trials))  # a figure, after the losses; the run is <name>/sweep
    print(f"Figure:       {path}")
    return path


def sweep_figure(
    trials: Sequence[Any], x: str, by: str, objective: str, labels: dict[str, str], title: str | None = None
) -> Figure:
    """A sweep's objective against one option (log-log), a curve for each value of another, and the limits.

    `trials` are Optuna's finished trials. Each curve's computed limit 2/λ_max (the trials' `stable_lr`) is a
    dashed line; a trial pruned as hopeless is a ring at its last loss; the best straight line's loss on the same
    rows (the trials' `best_line`) is dotted. A trial that diverged has no loss to draw: it is a cross in a strip of
    its own above the axes, which has no loss scale, so that it never reads as a measured loss.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.2, 4.8), dpi=100, layout="constrained")
    groups: dict[str, list[Any]] = {}
    for trial in sorted(trials, key=lambda t: t.params[x]):
        groups.setdefault(str(trial.params.get(by)), []).append(trial)
    diverged = [t for t in trials if t.state.name == "PRUNED" and t.user_attrs.get("diverged")]
    if diverged:
        strip, ax = figure.subplots(2, 1, sharex=True, height_ratios=[1, 9])
        strip.set_yticks([])
        strip.set_ylim(0, len(groups) + 1)
        strip.set_ylabel("diverged", rotation=0, ha="right", va="center", fontsize=9)
        strip.tick_params(axis="x", labelbottom=False)
        strip.grid(True, axis="x", which="major", alpha=0.3)
    else:
        strip, ax = None, figure.add_subplot()
    for index, (value, group) in enumerate(groups.items()):
        name, color = labels.get(value, f"{by} {value}"), f"C{index}"
        done = [(t.params[x], t.user_attrs["value"]) for t in group if t.state.name == "COMPLETE"]
        pruned = [t for t in group if t.state.name == "PRUNED"]
        crosses = [t.params[x] for t in pruned if t.user_attrs.get("diverged")]
        hopeless = [(t.params[x], t.user_attrs["value"]) for t in pruned if not t.user_attrs.get("diverged")]
        if done:
            ax.plot(*zip(*done, strict=True), "o-", color=color, ms=4, label=name)
        if crosses and strip is not None:  # a row of the strip for each curve
            row = len(groups) - index
            strip.plot(crosses, [row] * len(crosses), "x", color=color, ms=7, mew=2, label=f"{name}: diverged")
        if hopeless:
            ax.plot(*zip(*hopeless, strict=True), "o", mfc="none", color=color, ms=7, label=f"{name}: pruned")
        for limit in sorted({t.user_attrs.get("stable_lr") for t in group} - {None}):
            for axes in (ax, strip) if strip is not None else (ax,):
                axes.axvline(limit, color=color, ls="--", lw=1)
            ax.annotate(
                f" 2/λ_max = {limit:.3g}",
                (limit, 1),
                xycoords=ax.get_xaxis_transform(),  # x a learning rate, y the top of the axes: no loss
                color=color,
                fontsize=8,
                va="top",
                rotation=90,
                ha="right",
            )
    floors = {t.user_attrs.get("best_line") for t in trials} - {None}
    if len(floors) == 1:  # the same rows in every trial: the best straight line's loss is one level
        ax.axhline(*floors, color="gray", ls=":", lw=1, label=f"best straight line (least squares) {min(floors):.4g}")
    if not any(t.state.name == "COMPLETE" or not t.user_attrs.get("diverged") for t in trials):
        ax.text(0.5, 0.5, "no loss to draw: every trial diverged", transform=ax.transAxes, ha="center", va="center")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{objective}, log scale")
    (strip or ax).set_title(title or f"{objective} of each trial against {x}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    handles = [h for axes in (strip, ax) if axes is not None for h in axes.get_legend_handles_labels()[0]]
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="lower left")
    return figure
