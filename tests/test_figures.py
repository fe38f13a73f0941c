"""The pictures: TensorBoard images read back with TensorBoard's own EventAccumulator, the PNGs, the layout."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from tests.book import T_C, T_U
from thermometer.linear import gram
from thermometer.report.figures import mse_grid

PNG = b"\x89PNG\r\n\x1a\n"


def everything(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_fit_images_at_the_start_after_powers_of_4_epochs_and_at_the_end(default_run):
    epochs = yaml.safe_load((default_run / "metrics.json").read_text())["epochs"]
    images = everything(default_run).Images("views/fit")
    assert [image.step for image in images] == [0, 1, 4, 16, epochs]
    for image in images:
        assert image.encoded_image_string.startswith(PNG)
        decoded = Image.open(io.BytesIO(image.encoded_image_string))
        assert decoded.size == (image.width, image.height) == (640, 480)
    # The line moves into place: the first frame differs from the last.
    first, last = (np.asarray(Image.open(io.BytesIO(images[i].encoded_image_string))) for i in (0, -1))
    assert (first != last).any()


def test_loss_landscape_image_at_the_end_and_both_pngs_in_the_run_directory(default_run):
    epochs = yaml.safe_load((default_run / "metrics.json").read_text())["epochs"]
    [landscape] = everything(default_run).Images("views/loss_landscape")
    assert landscape.step == epochs and landscape.encoded_image_string.startswith(PNG)
    for name, size in (("fit.png", (640, 480)), ("loss_landscape.png", (640, 560))):
        with Image.open(default_run / name) as png:
            assert png.format == "PNG" and png.size == size
            png.verify()


def test_custom_scalars_chart_training_against_validation(default_run):
    [config] = everything(default_run).Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    [category] = layout.category
    charts = {chart.title: list(chart.multiline.tag) for chart in category.chart}
    assert charts["loss"] == ["^train/loss$", "^val/loss$"]
    assert charts["R2Score"] == ["^train/R2Score$", "^val/R2Score$"]
    assert set(charts) == {"loss", "MeanAbsoluteError", "R2Score"}  # the loss and each of the model's metrics


def test_every_n_epochs_sets_the_schedule(cli):
    run = cli("--figures.every_n_epochs", "5", "--trainer.max_epochs", "12")
    assert [image.step for image in everything(run.path).Images("views/fit")] == [0, 5, 10, 12]


def test_a_polynomial_gets_its_curve_but_no_landscape(cli):
    run = cli("--model.net", "Polynomial", "--model.net.degree", "2", "--trainer.max_epochs", "3")
    assert (run.path / "fit.png").is_file()
    assert not (run.path / "loss_landscape.png").exists()
    assert everything(run.path).Tags()["images"] == ["views/fit"]


def test_the_landscape_grid_is_the_mean_squared_error():
    x, y = (T_U * 0.1).double().numpy(), T_C.double().numpy()
    moments = gram(lambda t_u: t_u, torch.from_numpy(x)[:, None], torch.from_numpy(y)).numpy()
    weight, bias = np.meshgrid([1.0, 5.3671, -2.0], [0.0, -17.3012, 4.0])
    direct = [
        [F.mse_loss(torch.from_numpy(w * x + b), torch.from_numpy(y)).item() for w, b in zip(ws, bs, strict=True)]
        for ws, bs in zip(weight, bias, strict=True)
    ]
    assert mse_grid(moments, weight, bias) == pytest.approx(np.array(direct), rel=1e-12)
    assert mse_grid(moments, np.array(1.0), np.array(0.0)) == pytest.approx(80.3643, rel=1e-5)  # the book's start


def groups(run_dir) -> list[str]:
    """A run's TensorBoard groups in the order Time Series and Scalars show them: by tag, the part before the '/'."""
    tags = everything(run_dir).Tags()
    return list(dict.fromkeys(tag.split("/")[0] for tag in sorted(tags["scalars"] + tags["images"])))


def test_the_losses_come_first_in_tensorboard(default_run, cli):
    # TensorBoard opens the first two groups and folds the others: train/ and val/ must sort before the rest.
    assert groups(default_run) == ["train", "val", "views", "weights"]  # weights/: the parameters and gradients
    network = cli("--model.net", "MLP", "--trainer.max_epochs", "2")
    assert groups(network.path)[:2] == ["train", "val"]
