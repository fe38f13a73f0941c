"""A user's own network, in the user's own file, picked with one flag: `--model.net tests.test_own_net.Knee`.

It trains, checkpoints, resumes exactly, predicts from raw readings, and gets every report that applies to it and
none that does not; a net linear in its parameters (`features`) gets its equation and closed form too.
"""

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from tests.book import BOOK_TRAIN_ROWS, T_C, T_U
from thermometer.cli import main
from thermometer.linear import best_line


class Knee(nn.Module):
    """A line with a smooth bend: not linear in its parameters, so it has no equation to print.

    Args:
        n_inputs: told by the data.
        sharpness: how sharp the bend is.

    """

    def __init__(self, n_inputs: int = 1, sharpness: float = 1.0) -> None:
        super().__init__()
        self.inner = nn.Linear(n_inputs, 2)
        self.outer = nn.Linear(2, 1)
        self.sharpness = sharpness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(F.softplus(self.inner(x), beta=self.sharpness))


class Cube(nn.Module):
    """`t_p = w * t_u**3 + b`: linear in its parameters, and says so with `features`."""

    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_inputs))
        self.bias = nn.Parameter(torch.zeros(()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x**3

    def feature_names(self, inputs: list[str]) -> list[str]:
        return [f"{c}^3" for c in inputs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.weight + self.bias


KNEE = ["--model.net", "tests.test_own_net.Knee", "--model.net.sharpness", "0.5", "--early_stopping.patience", "1000"]
KNEE += ["--model.optimizer", "Adam", "--model.optimizer.lr", "0.05"]


class Noisy(nn.Module):
    """A network with dropout and batch normalisation: it behaves differently in training and in eval mode."""

    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_inputs, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


NOISY = ["--model.net", "tests.test_own_net.Noisy", "--model.optimizer", "Adam", "--model.optimizer.lr", "0.05"]


def test_a_net_with_dropout_and_batchnorm_is_reported_in_eval_mode_and_its_figures_change_nothing(cli, tmp_path):
    run = cli(*NOISY, "--trainer.max_epochs", "30", "--figures.every_n_epochs", "1")
    sparse = cli(*NOISY, "--trainer.max_epochs", "30", "--figures.every_n_epochs", "1000").metrics
    for key in ("train_loss", "val_loss", "best_loss", "best_epoch"):  # the figures observe; they change nothing
        assert run.metrics[key] == sparse[key], key
    validate = main(["validate", "--ckpt_path", str(run.path / "checkpoints" / "last.ckpt")])
    # The summary's val_loss is the last net in eval mode, as validate and predict use it.
    assert validate.trainer.callback_metrics["val/loss"].item() == pytest.approx(run.metrics["val_loss"], rel=1e-5)


def test_a_net_with_dropout_resumes_exactly(cli):
    whole = cli(*NOISY, "--trainer.max_epochs", "40", "--early_stopping.patience", "40").metrics
    first = cli(*NOISY, "--trainer.max_epochs", "20", "--early_stopping.patience", "40")
    config, last = first.path / "config.yaml", first.path / "checkpoints" / "last.ckpt"
    main(["fit", "--config", str(config), "--ckpt_path", str(last), "--trainer.max_epochs", "40"])
    for key in ("train_loss", "val_loss", "best_loss", "epochs", "best_epoch"):  # dropout drew the same numbers
        assert first.metrics[key] == whole[key], key


def tags(run_dir) -> list[str]:
    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return accumulator.Tags()["scalars"] + accumulator.Tags()["images"]


def test_a_users_net_trains_reports_what_applies_and_predicts_from_raw_readings(cli, capsys):
    run = cli(*KNEE, "--trainer.max_epochs", "300")
    m = run.metrics
    assert m["net"] == "tests.test_own_net.Knee"
    # None of the line's reports: no equation, no trained weights, no closed form of its own, no landscape.
    assert m["equation"] is m["weight"] is m["bias"] is m["trained"] is m["optimum"] is None
    assert not (run.path / "loss_landscape.png").exists() and (run.path / "fit.png").is_file()
    assert not [tag for tag in tags(run.path) if tag.startswith("weights/") and not tag.startswith("weights/grad/")]
    # Every net's reports: the losses, the best epoch, why it stopped, and the best line as a baseline.
    line_weight, line_bias = best_line(T_U[BOOK_TRAIN_ROWS, None], T_C[BOOK_TRAIN_ROWS])
    assert m["closed_form"]["weight"] == pytest.approx([line_weight.item()]) and m["closed_form"]["bias"] == (
        pytest.approx(line_bias)
    )
    assert m["closed_form"]["train_loss"] == pytest.approx(3.01229, rel=1e-5)
    assert m["train_loss"] < 1.1 * m["closed_form"]["train_loss"]  # it learned: near the best line, from 150
    assert m["epochs"] == 300 and m["stop_reason"] == "max_epochs=300 reached" and m["best_epoch"] >= 1
    out = capsys.readouterr().out
    assert "Learned:" not in out and "Closed form:" not in out
    assert "Net:          tests.test_own_net.Knee, not linear in its parameters" in out
    assert "Best line:    train 3.01229, val 3.54439" in out

    # Predictions from raw readings alone: the checkpoint's normalisation, then the user's net, which the
    # checkpoint names as data: it loads weights-only, without running pickled code.
    last = run.path / "checkpoints" / "last.ckpt"
    named = torch.load(last, weights_only=True)["hyper_parameters"]["net"]
    assert named == {"class_path": "tests.test_own_net.Knee", "init_args": {"n_inputs": 1, "sharpness": 0.5}}
    main(["predict", "--ckpt_path", str(last), "--data.predict_readings", "[20, 50.5, 90]"])
    state = torch.load(last, weights_only=True)["state_dict"]
    net = Knee(sharpness=0.5)
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    t_un = (torch.tensor([[20.0], [50.5], [90.0]]) - state["normalize.center"]) * state["normalize.scale"]
    expected = net(t_un).detach().ravel().tolist()
    assert pd.read_csv(run.path / "predictions.csv")["t_c_predicted"].tolist() == pytest.approx(expected, rel=1e-5)


def test_a_users_net_resumes_exactly(cli, tmp_path):
    whole = cli(*KNEE, "--trainer.max_epochs", "60").metrics
    first = cli(*KNEE, "--trainer.max_epochs", "25")
    config, last = first.path / "config.yaml", first.path / "checkpoints" / "last.ckpt"
    main(["fit", "--config", str(config), "--ckpt_path", str(last), "--trainer.max_epochs", "60"])
    resumed = first.metrics
    for key in ("train_loss", "val_loss", "best_loss", "epochs", "best_epoch"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-6), key


def test_a_users_net_linear_in_its_parameters_gets_its_equation_closed_form_and_landscape(cli):
    run = cli("--model.net", "tests.test_own_net.Cube", "--model.optimizer.lr", "0.05", "--trainer.max_epochs", "300")
    m = run.metrics
    assert m["trained"]["features"] == ["t_un^3"]
    # Standardised readings cubed are not a multiple of raw readings cubed plus a constant: no raw-unit
    # equation, only the one in the units it trained in, and the closed form of its own family.
    assert m["equation"] is m["features"] is None and m["trained"]["equation"].startswith("t_c = ")
    assert m["optimum"]["train_loss"] <= m["train_loss"] < 1.01 * m["optimum"]["train_loss"]
    assert (run.path / "loss_landscape.png").is_file()
    # The raw-unit equation converts whatever was learned: 20 epochs show it as well as the default 1000.
    cube = ["--model.net", "tests.test_own_net.Cube", "--trainer.max_epochs", "20"]
    scaled = cli(*cube, "--model.normalize", "scale", "--model.scale", "0.01")
    m = scaled.metrics  # t_un = 0.01 * t_u, so w * t_un**3 = (1e-6 * w) * t_u**3
    assert m["trained"]["weight"][0] != 0 and m["trained"]["bias"] != 0  # it moved from its zeros
    assert m["weight"] == pytest.approx([1e-6 * m["trained"]["weight"][0]], rel=1e-6)  # 0.01 in float32
    assert m["bias"] == pytest.approx(m["trained"]["bias"], rel=1e-9) and m["features"] == ["t_u^3"]


class Squeezed(nn.Module):
    """Chapter 6's network ending with `.squeeze()`, as many do: a batch of one row gets a 0-d tensor back."""

    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_inputs, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze()


def test_a_net_that_squeezes_its_output_trains_in_batches_and_predicts_one_reading(cli, tmp_path):
    # 9 training rows in batches of 4: the last batch is one row, whose prediction is 0-d.
    squeezed = ["--model.net", "tests.test_own_net.Squeezed", "--model.optimizer.lr", "0.01"]
    run = cli(*squeezed, "--data.batch_size", "4", "--trainer.max_epochs", "5")
    assert run.metrics["epochs"] == 5
    main(["predict", "--ckpt_path", str(run.path / "checkpoints" / "last.ckpt"), "--data.predict_readings", "[35.7]"])
    assert len(pd.read_csv(run.path / "predictions.csv")) == 1


def test_a_net_that_does_not_declare_n_inputs_is_used_as_it_is(cli):
    # Chapter 6's first model, nn.Linear(1, 1): a line, but it does not say so with `features`.
    run = cli("--model.net", "torch.nn.Linear", "--model.net.in_features", "1", "--model.net.out_features", "1")
    m = run.metrics
    assert m["net"] == "torch.nn.modules.linear.Linear" and m["equation"] is None
    assert m["train_loss"] == pytest.approx(m["closed_form"]["train_loss"], rel=1e-4)


def test_a_network_on_several_inputs_trains_and_reports(cli, tmp_path):
    t_u = torch.linspace(20, 90, 60)
    humidity = torch.rand(60, generator=torch.Generator().manual_seed(0))
    rows = {"t_u": t_u, "humidity": humidity, "t_c": (t_u - 32) * 5 / 9 - humidity}
    (tmp_path / "two.csv").write_text(
        "t_u,humidity,t_c\n"
        + "".join(f"{a},{b},{c}\n" for a, b, c in zip(*map(torch.Tensor.tolist, rows.values()), strict=True))
    )
    run = cli("--data.csv_path", "two.csv", "--data.input_columns", "[t_u, humidity]", "--model.net", "MLP")
    m = run.metrics
    assert m["equation"] is None and m["closed_form"]["weight"] == pytest.approx([5 / 9, -1], abs=1e-3)
    assert not (run.path / "fit.png").exists()  # the fit is drawn for one input column


class Detached(nn.Module):
    """A line whose forward leaves autograd: no step can learn it (refused before anything is written)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, t_un: torch.Tensor) -> torch.Tensor:
        return self.linear(t_un).detach()


class NeedsWidth(nn.Module):
    """A net whose argument has neither a type nor a default: it must be given (refused when it is not)."""

    def __init__(self, width) -> None:  # untyped, as a quick net often is
        super().__init__()
        self.linear = nn.Linear(1, width)
        self.out = nn.Linear(width, 1)

    def forward(self, t_un: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.linear(t_un)))


class KeepsItsType(nn.Module):
    """A net that computes in its own type, whatever it is given: float32, or bfloat16 weights."""

    def __init__(self, bfloat16: bool = False) -> None:
        super().__init__()
        self.dtype = torch.bfloat16 if bfloat16 else torch.float32
        self.hidden, self.out = nn.Linear(1, 4).to(self.dtype), nn.Linear(4, 1).to(self.dtype)

    def forward(self, t_un: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(t_un.to(self.dtype))))


@pytest.mark.parametrize("bfloat16", [False, True])
def test_a_net_that_keeps_its_own_type_is_reported_as_it_computes(cli, bfloat16):
    args = ["--model.net", "tests.test_own_net.KeepsItsType", "--model.net.bfloat16", str(bfloat16).lower()]
    m = cli(*args, "--model.optimizer", "Adam", "--model.optimizer.lr", "0.05", "--trainer.max_epochs", "20").metrics
    assert math.isfinite(m["train_loss"]) and m["train_loss"] == pytest.approx(m["last_epoch"]["train/loss"], rel=0.5)
