"""The chapter's pictures: the readings with the fitted curve, and the loss landscape with the optimizer's path.

`Figures` draws them during `fit`, to TensorBoard's images tab and the run directory. They are drawn with
matplotlib's object API (no pyplot, no global state, no display needed), imported only by runs that draw: it
takes half a second to import.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from thermometer.errors import UsageError
from thermometer.linear import LinearFit, learning_rate_limit
from thermometer.run import atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The book's axis labels for its own columns; any other column is labelled with its name.
LABELS = {"t_u": "Temperature (°Fahrenheit)", "t_c": "Temperature (°Celsius)"}


def label(column: str) -> str:
    """The axis label of a column: the book's for `t_u` and `t_c`, the column's name otherwise."""
    return LABELS.get(column, column)


def pixels(figure: Figure) -> np.ndarray:
    """The figure rendered as an RGBA array, height x width x 4."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


class PNG(bytes):
    """An image encoded once as a quickly compressed RGB PNG, for the run directory and TensorBoard alike.

    `SummaryWriter.add_image` converts the pixels to floats and back and compresses at PIL's default level: 20 ms a
    frame of the fit, more than ten epochs of the eleven readings; this takes about 9.
    """

    height: int
    width: int

    @classmethod
    def of(cls, rgba: np.ndarray) -> PNG:
        """Matplotlib's RGBA pixels, height x width x 4, encoded without their alpha."""
        from PIL import Image

        encoded = io.BytesIO()
        # The alpha is dropped here, by PIL: copying the RGB channels out of matplotlib's buffer costs 3 ms a frame.
        Image.fromarray(rgba).convert("RGB").save(encoded, format="PNG", compress_level=1)
        png = cls(encoded.getvalue())
        png.height, png.width = rgba.shape[:2]
        return png


def add_image(writer: Any, tag: str, png: PNG, step: int) -> None:
    """An encoded image into TensorBoard's images tab (`SummaryWriter.add_image` would encode the pixels again)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    image = Summary.Image(height=png.height, width=png.width, colorspace=3, encoded_image_string=bytes(png))
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


class FitFigure:
    """The readings (training and validation marked apart), a reference curve dashed, the learned one solid.

    The reference is the closed-form optimum of the net's family for a net linear in its parameters, and the best
    straight line for any other net; crosses mark the predictions at the readings, as chapter 6 draws them.

    Rendered once without the learned curve and the title; each frame then draws only those two over that
    background (blitting), a few milliseconds instead of a full render.
    """

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        xs: np.ndarray,
        reference: tuple[np.ndarray, str],
        x_column: str,
        y_column: str,
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        closed_form, reference_label = reference
        self.readings = np.concatenate([train[0], val[0]])
        self.figure = Figure(figsize=(6.4, 4.8), dpi=100, layout="constrained")
        ax = self.figure.add_subplot()
        ax.plot(*train, "o", color="tab:blue", label=f"training readings ({len(train[0])})")
        if len(val[0]):
            ax.plot(*val, "s", color="tab:orange", markerfacecolor="none", mew=2, label=f"validation ({len(val[0])})")
        (self.optimum,) = ax.plot(xs, closed_form, "--", color="black", lw=1.2, label=reference_label)
        (self.line,) = ax.plot(xs, np.full_like(xs, np.nan), "-", color="tab:green", lw=2, label="learned")
        nothing = np.full_like(self.readings, np.nan)
        (self.predicted,) = ax.plot(self.readings, nothing, "x", color="tab:green", ms=6, label="predicted")
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
        for artist in (self.line, self.predicted, self.optimum, self.title):
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)

    def draw(self, curve: np.ndarray, predicted: np.ndarray, title: str) -> np.ndarray:
        """The figure with the learned curve (values at `xs` and at the readings) and this title, as RGBA pixels."""
        self.line.set_ydata(curve)
        self.predicted.set_ydata(predicted)
        self.title.set_text(title)
        self.canvas.restore_region(self.background)
        self.axes.draw_artist(self.line)
        self.axes.draw_artist(self.predicted)
        self.axes.draw_artist(self.optimum)  # dashed, over the learned line it is compared with
        self.figure.draw_artist(self.title)
        return np.asarray(self.canvas.buffer_rgba()).copy()


def mse_grid(gram: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """`mean((weight * x + bias - y)**2)` at every (weight, bias), from the `gram` of `[x, 1, y]` (any rows)."""
    (xx, x1, xy), (_, ones, y1), (_, _, yy) = gram.tolist()
    return weight**2 * xx + 2 * weight * bias * x1 + bias**2 * ones - 2 * weight * xy - 2 * bias * y1 + yy


def loss_landscape(
    gram: np.ndarray,
    path: Sequence[tuple[float, float]],
    optimum: tuple[float, float],
    x_name: str,
    title: str,
) -> Figure:
    """Contours of the training loss over (weight, bias), the optimizer's path and the least-squares optimum.

    `gram` is that of the training rows' `[x, 1, t_c]`, `x` the input as the weight sees it (normalised or raw), so
    the picture shows what the optimizer walked on: a long narrow valley for raw readings, a round bowl for
    standardised ones. Axes have equal scales, or the valley would look round.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

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
    loss = mse_grid(gram, w, b)
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


def shape(condition_number: float) -> str:
    """The landscape's shape in two words, from its condition number."""
    return "a round bowl" if condition_number < 2 else "an oval bowl" if condition_number < 100 else "a narrow valley"


VIEWS = "views"
"""TensorBoard's group of the figures: after `train/` and `val/`, which it sorts by name, so the losses come first."""


def tensorboard_writers(trainer: L.Trainer) -> list[Any]:
    """The `SummaryWriter` of each TensorBoard logger of the trainer."""
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


class Figures:
    """The pictures of learning: the fit drawn over the readings, the loss landscape, training against validation.

    TensorBoard's images tab gets `views/fit` at the start (step 0), after scheduled epochs (step = epochs done) and at
    the end, so its slider shows the curve moving into place, and `views/loss_landscape` at the end; the run directory
    gets `fit.png` and `loss_landscape.png`. Its custom-scalars tab charts training and validation together, the loss
    and each metric. The fit is drawn for one input column, for any net; the landscape of the mean squared error for
    a net linear in its parameters with one weight and a bias, such as the line `w * t_u + b`. `Report` calls it.

    Args:
        every_n_epochs: draw the fit after every N epochs; by default after epochs 1, 4, 16, 64, ... (powers of
            4): dense where the curve moves most, and at most 10 images up to 260,000 epochs (TensorBoard shows 10
            images a tag unless started with `--samples_per_plugin images=100`).
        max_points: the most readings drawn, evenly spread over a bigger CSV, so that a frame stays cheap.

    """

    def __init__(self, every_n_epochs: int | None = None, max_points: int = 1000) -> None:
        if every_n_epochs is not None and every_n_epochs < 1:
            raise UsageError(f"every_n_epochs is {every_n_epochs}; it must be 1 or more. Set --figures.every_n_epochs.")
        if max_points < 1:
            raise UsageError(f"--figures.max_points {max_points}: a figure draws at least 1 reading, e.g. 1000.")
        self.every_n_epochs, self.max_points = every_n_epochs, max_points
        self.fit: FitFigure | None = None
        self.drawn = -1
        self.encoder: ThreadPoolExecutor | None = None
        self.last_frame: Future[PNG] | None = None

    def due(self, epoch: int) -> bool:
        """Whether the fit is drawn after this epoch."""
        if self.every_n_epochs:
            return epoch % self.every_n_epochs == 0
        return epoch & (epoch - 1) == 0 and epoch.bit_length() % 2 == 1  # a power of 4

    def start(
        self, trainer: L.Trainer, pl_module: Any, reference: Callable[[Any], tuple[torch.Tensor, str]], title: str
    ) -> None:
        """The custom-scalars charts, and the fit's first frame against `reference(data)`, a curve at `references`."""
        self.fit, self.drawn, self.last_frame = None, -1, None
        if not trainer.is_global_zero:
            return
        names = ["loss", *(name.removeprefix("train/") for name in pl_module.train_metrics.keys(keep_base=False))]
        for experiment in tensorboard_writers(trainer):
            experiment.add_custom_scalars(
                {
                    "training against validation": {
                        name: ["Multiline", [f"^train/{name}$", f"^val/{name}$"]] for name in names
                    }
                }
            )
        if len(trainer.datamodule.input_columns) == 1:
            self.fit = self.fit_figure(trainer.datamodule, reference(trainer.datamodule))
            self.draw_fit(trainer, pl_module, trainer.current_epoch, title)

    def references(self, data: Any) -> torch.Tensor:
        """The readings along the x-axis a reference curve is drawn at: the data's range and a little more."""
        t_u = [rows[:, 0] for rows in (data.train_inputs, data.val_inputs) if len(rows)]
        low, high = min(t.min().item() for t in t_u), max(t.max().item() for t in t_u)
        margin = 0.05 * (high - low or 1.0)
        return torch.linspace(low - margin, high + margin, 200)[:, None]

    def epoch_end(self, trainer: L.Trainer, pl_module: Any, epoch: int, title: str) -> None:
        """A frame of the fit, if one is due after this epoch."""
        if self.fit is not None and self.due(epoch):
            self.draw_fit(trainer, pl_module, epoch, title)

    def end(self, trainer: L.Trainer, pl_module: Any, title: str, landscape: Figure | None) -> None:
        """The last frame into `fit.png`, and the landscape, if there is one, into `loss_landscape.png`."""
        if self.fit is None:
            return
        epochs, run_dir = trainer.current_epoch, Path(trainer.logger.log_dir)  # rank 0 only
        if self.drawn != epochs:
            self.draw_fit(trainer, pl_module, epochs, title)
        last_frame = self.last_frame.result()  # the frames before it are in TensorBoard too, then
        atomic.replace(run_dir / "fit.png", lambda file: file.write(last_frame), mode="wb")
        if landscape is not None:
            image = PNG.of(pixels(landscape))  # once, for the file and TensorBoard
            atomic.replace(run_dir / "loss_landscape.png", lambda file: file.write(image), mode="wb")
            for experiment in tensorboard_writers(trainer):
                add_image(experiment, f"{VIEWS}/loss_landscape", image, epochs)

    def close(self) -> None:
        """Wait for the last frames: a frame of a run stopped by an error still reaches TensorBoard."""
        if self.encoder is not None:
            self.encoder.shutdown(wait=True)
            self.encoder = None

    def subsample(self, rows: int) -> torch.Tensor:
        """At most `max_points` row numbers, evenly spread (the rows of a split are already in random order)."""
        return torch.linspace(0, rows - 1, min(rows, self.max_points)).round().long()

    def fit_figure(self, data: Any, reference: tuple[torch.Tensor, str]) -> FitFigure:
        train, val = self.subsample(len(data.train_targets)), self.subsample(len(data.val_targets))
        self.readings = torch.cat([data.train_inputs[train], data.val_inputs[val]])
        self.xs = self.references(data)
        return FitFigure(
            (data.train_inputs[train, 0].numpy(), data.train_targets[train].numpy()),
            (data.val_inputs[val, 0].numpy(), data.val_targets[val].numpy()),
            self.xs[:, 0].numpy(),
            (reference[0].numpy(), reference[1]),
            data.input_columns[0],
            data.target_column,
        )

    def draw_fit(self, trainer: L.Trainer, pl_module: Any, epoch: int, title: str) -> None:
        """A frame of the fit: the net's curve in eval mode, without gradients; its mode is restored."""
        training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                curve, predicted = pl_module(self.xs).numpy(), pl_module(self.readings).numpy()
        finally:
            pl_module.train(training)
        when = "Start" if epoch == 0 else f"After {epoch} epoch{'s' if epoch > 1 else ''}"
        frame = self.fit.draw(curve, predicted, f"{when}: {title}")
        if self.encoder is None:
            # PNG compression releases the GIL: on a second core it costs the epochs nothing. One thread, so the
            # frames reach TensorBoard in order.
            self.encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frames")
        self.last_frame = self.encoder.submit(self.publish, frame, epoch, tensorboard_writers(trainer))
        self.drawn = epoch

    @staticmethod
    def publish(frame: np.ndarray, epoch: int, writers: list[Any]) -> PNG:
        """A frame of the fit encoded (off the training thread), into TensorBoard at its epoch."""
        png = PNG.of(frame)
        for experiment in writers:
            add_image(experiment, f"{VIEWS}/fit", png, epoch)
        return png


def landscape_figure(
    linear: LinearFit, path: Sequence[tuple[float, ...]], x_name: str, target: str, how: str, described: list[str]
) -> Figure:
    """The training loss's landscape of a line `target = w * x + b` and the optimizer's `path` over it."""
    weight, bias = linear.optimum  # in the coordinates the net trains in
    units = f", {described[0]}" if described else ""
    condition = learning_rate_limit(linear.curvature)[1]  # λ_max / λ_min
    return loss_landscape(
        linear.gram.numpy(),
        path,
        (weight.item(), bias),
        x_name,
        f"Training loss of {target} = w * {x_name} + b{units}\nand the path of {how}\n"
        f"condition number λ_max/λ_min = {condition:.5g}: {shape(condition)}",
    )
