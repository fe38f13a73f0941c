"""The chapter's pictures: the readings with the fitted line, and the loss landscape with the optimizer's path.

Drawn with matplotlib's object API (no pyplot, no global state, no display needed); `pixels` turns a figure into
an image array for TensorBoard.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

# The book's axis labels for its own columns; any other column is labelled with its name.
LABELS = {"t_u": "Temperature (°Fahrenheit)", "t_c": "Temperature (°Celsius)"}


def label(column: str) -> str:
    """The axis label of a column: the book's for `t_u` and `t_c`, the column's name otherwise."""
    return LABELS.get(column, column)


def pixels(figure: Figure) -> np.ndarray:
    """The figure rendered as an RGB array, height x width x 3."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class FitFigure:
    """The readings (training and validation marked apart), the least-squares curve dashed, the learned one solid.

    Rendered once without the learned curve and the title; each frame then draws only those two over that
    background (blitting), a few milliseconds instead of a full render.
    """

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        xs: np.ndarray,
        closed_form: np.ndarray,
        x_column: str,
        y_column: str,
    ) -> None:
        self.figure = Figure(figsize=(6.4, 4.8), dpi=100, layout="constrained")
        ax = self.figure.add_subplot()
        ax.plot(*train, "o", color="tab:blue", label=f"training readings ({len(train[0])})")
        if len(val[0]):
            ax.plot(*val, "s", color="tab:orange", markerfacecolor="none", mew=2, label=f"validation ({len(val[0])})")
        (self.optimum,) = ax.plot(xs, closed_form, "--", color="black", lw=1.2, label="least squares (closed form)")
        (self.line,) = ax.plot(xs, np.full_like(xs, np.nan), "-", color="tab:green", lw=2, label="learned")
        y = np.concatenate([train[1], val[1], closed_form])
        margin = 0.1 * (y.max() - y.min() or 1.0)
        ax.set_ylim(y.min() - margin, y.max() + margin)  # the data's range: a wild line leaves the frame
        ax.set_xlim(xs[0], xs[-1])
        ax.set_xlabel(label(x_column))
        ax.set_ylabel(label(y_column))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        self.axes, self.title = ax, ax.set_title("After 0 epochs", fontsize=10)  # room for the title in the layout
        self.canvas = FigureCanvasAgg(self.figure)
        for artist in (self.line, self.optimum, self.title):
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)

    def draw(self, curve: np.ndarray, title: str) -> np.ndarray:
        """The figure with the learned curve at `curve` (values at `xs`) and this title, as RGB pixels."""
        self.line.set_ydata(curve)
        self.title.set_text(title)
        self.canvas.restore_region(self.background)
        self.axes.draw_artist(self.line)
        self.axes.draw_artist(self.optimum)  # dashed, over the learned line it is compared with
        self.figure.draw_artist(self.title)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


def mse_grid(x: np.ndarray, y: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """`mean((weight * x + bias - y)**2)` at every (weight, bias), from five moments of the data (any size)."""
    return (
        weight**2 * np.mean(x * x)
        + 2 * weight * bias * np.mean(x)
        + bias**2
        - 2 * weight * np.mean(x * y)
        - 2 * bias * np.mean(y)
        + np.mean(y * y)
    )


def loss_landscape(
    t_un: np.ndarray,
    t_c: np.ndarray,
    path: Sequence[tuple[float, float]],
    optimum: tuple[float, float],
    x_name: str,
    title: str,
) -> Figure:
    """Contours of the training loss over (weight, bias), the optimizer's path and the least-squares optimum.

    `t_un` are the training inputs as the weight sees them (normalised or raw), so the picture shows what the
    optimizer walked on: a long narrow valley for raw readings, a round bowl for standardised ones. Axes have equal
    scales, or the valley would look round.
    """
    x, y = t_un.astype(np.float64), t_c.astype(np.float64)
    steps = np.asarray(path, dtype=np.float64)
    finite = steps[np.isfinite(steps).all(axis=1)]
    start, best = steps[0], np.asarray(optimum)
    reach = 4 * np.abs(start - best).max() or 1.0  # a diverging path must not shrink the picture to a dot
    shown = np.vstack([start, best, finite[np.abs(finite - best).max(axis=1) <= reach]])
    center = (shown.min(axis=0) + shown.max(axis=0)) / 2
    half = 0.6 * (shown.max(axis=0) - shown.min(axis=0)).max() or 1.0
    w, b = np.meshgrid(
        np.linspace(center[0] - half, center[0] + half, 161), np.linspace(center[1] - half, center[1] + half, 161)
    )
    loss = mse_grid(x, y, w, b)
    floor = max(loss.min(), 1e-9 * loss.max(), 1e-12)
    levels = np.geomspace(floor, loss.max(), 30)

    figure = Figure(figsize=(6.4, 5.6), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    filled = ax.contourf(w, b, np.maximum(loss, floor), levels=levels, norm=LogNorm(), cmap="viridis")
    ax.contour(w, b, np.maximum(loss, floor), levels=levels[::3], colors="white", linewidths=0.4, alpha=0.6)
    figure.colorbar(filled, ax=ax, label="training loss (MSE), log scale", format="%.3g")
    ax.plot(*steps.T, ".-", color="tab:red", lw=1.2, ms=3, label=f"optimizer's path ({len(steps) - 1} epochs)")
    ax.plot(*start, "o", color="tab:red", mec="white", ms=8, label="start")
    ax.plot(*steps[-1], "X", color="tab:red", mec="white", ms=9, label="end")
    ax.plot(*best, "*", color="white", mec="black", ms=16, label="least squares")
    ax.set_xlim(center[0] - half, center[0] + half)
    ax.set_ylim(center[1] - half, center[1] + half)
    ax.set_aspect("equal")
    ax.set_xlabel(f"weight w (°C per unit of {x_name})")
    ax.set_ylabel("bias b (°C)")
    ax.set_title(title, fontsize=10)
    figure.legend(loc="outside lower center", ncols=4, fontsize=8)
    return figure
