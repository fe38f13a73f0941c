"""The gradient three ways (section 5.4): autograd, the chapter's hand derivation and its finite differences agree."""

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from tests.book import T_C, T_U
from thermometer.gradients import analytic, finite_difference
from thermometer.nets import MLP, Line, Polynomial

x = T_U[:, None]
ROOT = Path(__file__).parents[1]


def autograd(net: nn.Module, loss_fn: nn.Module) -> list[torch.Tensor]:
    net.zero_grad()
    loss_fn(net(x).reshape(-1), T_C).backward()
    return [p.grad.clone() for p in net.parameters()]


def by_differences(net: nn.Module, loss_fn: nn.Module, delta: float = 0.1) -> list[torch.Tensor]:
    """In float64, as the system takes them: then only the difference's own error is left."""
    net = net.double()
    return finite_difference(lambda: loss_fn(net(x.double()).reshape(-1), T_C.double()), list(net.parameters()), delta)


def test_at_the_books_start_all_three_give_the_books_gradient():
    line, mse = Line(), nn.MSELoss()  # w = 1, b = 0 on raw t_u
    for gradient in (autograd(line, mse), analytic(line, x, T_C, mse), by_differences(Line(), mse)):
        assert [g.item() for g in gradient] == pytest.approx([4517.2969, 82.6000], rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    weight=st.floats(-3, 3),
    bias=st.floats(-30, 30),
    delta=st.sampled_from([1e-2, 0.1, 1.0, 10.0]),
    absolute=st.booleans(),
)
def test_the_hand_derivation_is_autograds_and_a_quadratics_central_difference_is_exact_whatever_delta(
    weight, bias, delta, absolute
):
    line = Line(init_weight=weight, init_bias=bias)
    loss_fn = nn.L1Loss() if absolute else nn.MSELoss()
    by_autograd, by_hand = autograd(line, loss_fn), analytic(line, x, T_C, loss_fn)
    for a, h in zip(by_autograd, by_hand, strict=True):
        assert h.reshape(a.shape).tolist() == pytest.approx(a.tolist(), rel=1e-5, abs=1e-4)
    if not absolute:  # the squared error is quadratic in (w, b): its third derivative is 0, exact whatever delta
        for a, d in zip(by_autograd, by_differences(line, loss_fn, delta), strict=True):
            assert d.tolist() == pytest.approx(a.tolist(), rel=1e-5, abs=1e-4)


def test_differences_estimate_any_nets_gradient():
    torch.manual_seed(0)
    net, mse = MLP(hidden=4), nn.MSELoss()
    for a, d in zip(autograd(net, mse), by_differences(net, mse, delta=1e-3), strict=True):
        assert d.reshape(-1).tolist() == pytest.approx(a.reshape(-1).tolist(), rel=1e-3, abs=1e-3)  # an estimate


def test_the_polynomials_hand_gradient_is_autograds():
    net = Polynomial(degree=3, init_weight=0.01)
    xn = x / 100
    net.zero_grad()
    nn.MSELoss()(net(xn), T_C).backward()
    by_hand = analytic(net, xn, T_C, nn.MSELoss())
    assert by_hand[0].tolist() == pytest.approx(net.weight.grad.tolist(), rel=1e-5)
    assert by_hand[1].item() == pytest.approx(net.bias.grad.item(), rel=1e-5)


@pytest.mark.parametrize("method", ["analytic", "finite_difference"])  # autograd: test_book.py
def test_02_small_lr_by_each_method_ends_on_the_books_numbers(cli, method):
    run = cli(
        "--config",
        str(ROOT / "configs" / "book" / "02_small_lr.yaml"),
        "--model.gradient",
        method,
        "--trainer.enable_progress_bar",
        "false",
    )
    m = run.metrics
    tolerance = 1e-5 if method == "finite_difference" else 1e-6
    assert m["trained"]["weight"] + [m["trained"]["bias"]] == pytest.approx([0.2327, -0.0438], abs=1e-4)
    assert m["last_epoch"]["train/loss"] == pytest.approx(29.022669, rel=max(tolerance, 1e-6))
    events = EventAccumulator(str(run.path), size_guidance={"scalars": 0})
    events.Reload()
    first = [events.Scalars(tag)[0] for tag in ("weights/grad/weight", "weights/grad/bias")]
    assert all(e.step == 1 for e in first)  # TensorBoard's step is the epoch
    assert [e.value for e in first] == pytest.approx([4517.2969, 82.6000], rel=1e-5)
    assert len(events.Scalars("weights/grad/weight")) == m["epochs"] == 100
    assert math.isfinite(events.Scalars("weights/grad/bias")[-1].value)


def test_a_network_logs_the_norm_of_each_tensors_gradient(cli):
    run = cli("--model.net", "MLP", "--trainer.max_epochs", "3")
    events = EventAccumulator(str(run.path))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "weights/grad_2.0_norm/net.hidden_linear.weight" in tags and "weights/grad_2.0_norm_total" in tags
    assert not any(tag.startswith("weights/grad/") for tag in tags)


def test_the_hand_derivation_is_refused_where_it_does_not_apply(cli, capsys):
    for args, said in (
        (["--model.net", "MLP"], "not MLP with MSELoss"),
        (["--model.loss", "HuberLoss"], "not Line with HuberLoss"),
    ):
        with pytest.raises(SystemExit) as refused:
            cli("--model.gradient", "analytic", *args)
        assert refused.value.code == 2
        [message] = capsys.readouterr().err.strip().splitlines()
        assert (
            message.startswith("error: --model.gradient analytic: derived by hand for nets linear") and said in message
        )


def test_validation_runs_without_gradients(cli, monkeypatch):
    from thermometer.system import Thermometer

    seen = []
    step = Thermometer.validation_step
    monkeypatch.setattr(
        Thermometer, "validation_step", lambda self, *a: seen.append(torch.is_grad_enabled()) or step(self, *a)
    )
    cli("--trainer.max_epochs", "2")
    assert seen and not any(seen)  # Lightning validates under torch.inference_mode / no_grad


def test_differences_of_a_dropout_net_are_its_gradient_under_one_mask():
    # A step's loss with dropout is one draw: each evaluation of the central difference must use the same mask.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 1)).double()
    x, y = 0.1 * T_U[:, None].double(), T_C.double()

    def loss() -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            return nn.functional.mse_loss(net(x).reshape(-1), y)

    estimated = finite_difference(loss, list(net.parameters()), 1e-5)
    loss().backward()
    for parameter, gradient in zip(net.parameters(), estimated, strict=True):
        assert gradient.reshape(-1).tolist() == pytest.approx(parameter.grad.reshape(-1).tolist(), rel=1e-5, abs=1e-7)


class FrozenBias(Line):
    """The book's line with its bias held at 0: only the weight learns."""

    def __init__(self) -> None:
        super().__init__()
        self.bias.requires_grad_(False)


@pytest.mark.parametrize("method", ["autograd", "analytic", "finite_difference"])
def test_a_frozen_parameter_stays_frozen_by_each_method(cli, method):
    m = cli("--model.net", "tests.test_gradients.FrozenBias", "--model.gradient", method, "--trainer.max_epochs", "5")
    assert m.metrics["trained"]["bias"] == 0.0 and m.metrics["trained"]["weight"][0] != 1.0
