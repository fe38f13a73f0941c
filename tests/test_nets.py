"""The nets, the normalisation in front of them, and what a net linear in its parameters gives: checked by hand
against the book's printed numbers and the closed form."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.book import BOOK_TRAIN_ROWS, BOOK_VAL_ROWS, T_C, T_U
from thermometer import linear as linear_module
from thermometer.errors import UsageError
from thermometer.linear import best_line, least_squares, line, linear_fit, mean_squared_error, trained_parameters
from thermometer.net_checks import check_net
from thermometer.nets import MLP, Line, Polynomial
from thermometer.system import Normalize, Thermometer

t_u = T_U[:, None]


def system(net: nn.Module | None = None, normalize: str = "none", n_inputs: int = 1) -> Thermometer:
    return Thermometer(net if net is not None else Line(n_inputs), n_inputs=n_inputs, normalize=normalize)


def sgd_step(model: Thermometer, lr: float) -> Thermometer:
    F.mse_loss(model(t_u), T_C).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return model


def test_loss_at_the_books_start():
    assert F.mse_loss(system()(t_u), T_C).item() == pytest.approx(1763.8846, rel=1e-5)
    assert F.mse_loss(system(normalize="scale")(t_u), T_C).item() == pytest.approx(80.3643, rel=1e-5)


def test_first_gradient_on_raw_readings():
    model = system()
    F.mse_loss(model(t_u), T_C).backward()
    assert model.net.weight.grad.item() == pytest.approx(4517.2969, rel=1e-6)
    assert model.net.bias.grad.item() == pytest.approx(82.6000, rel=1e-6)


def test_one_step_as_the_book_prints():
    raw = sgd_step(system(), lr=1e-5).net
    assert [raw.weight.item(), raw.bias.item()] == pytest.approx([0.95483, -0.000826], abs=1e-5)
    scaled = sgd_step(system(normalize="scale"), lr=1e-2)  # parameters in t_un = 0.1 * t_u units
    assert [scaled.net.weight.item(), scaled.net.bias.item()] == pytest.approx([1.7761, 0.1064], abs=1e-4)
    fit = linear_fit(scaled.net, scaled.normalize, t_u, T_C)
    assert fit.raw(*trained_parameters(scaled.net))[0].item() == pytest.approx(0.17761, abs=1e-5)


def test_least_squares_matches_the_reference():
    weight, bias = best_line(t_u, T_C)
    assert [weight.item(), bias] == pytest.approx([0.5367719, -17.304786], abs=1e-6)
    weight, bias = best_line(t_u[BOOK_TRAIN_ROWS], T_C[BOOK_TRAIN_ROWS])
    assert [weight.item(), bias] == pytest.approx([0.520504, -16.7986], abs=1e-4)
    for rows, mse in [(BOOK_TRAIN_ROWS, 3.01229), (BOOK_VAL_ROWS, 3.54439)]:
        assert mean_squared_error(line(weight, bias), t_u[rows], T_C[rows]) == pytest.approx(mse, rel=1e-5)


@pytest.mark.parametrize("scale", [1e-20, 1e-8, 1.0, 1e8, 1e20])
def test_least_squares_holds_at_any_scale_of_the_readings(scale):
    # gelsd drops a column ~1e16 times smaller than the column of ones: the columns are scaled before solving.
    weight, bias = best_line(t_u.double() * scale, T_C)
    assert weight.item() * scale == pytest.approx(0.5367719, rel=1e-6)
    assert bias == pytest.approx(-17.304786, rel=1e-6)


def test_standardize_uses_the_rows_it_is_given():
    normalize = Normalize(1, "standardize")
    normalize.fit(t_u[BOOK_TRAIN_ROWS])
    t_un = normalize(t_u[BOOK_TRAIN_ROWS])
    assert t_un.mean().item() == pytest.approx(0, abs=1e-6)
    assert t_un.std(correction=0).item() == pytest.approx(1, abs=1e-6)
    assert normalize.center.item() != pytest.approx(T_U.mean().item(), abs=1e-3)
    assert normalize.describe(["t_u"]) == ["t_un = (t_u - 49.244) / 16.526"]
    assert Normalize(1, "scale").describe(["t_u"]) == ["t_un = 0.1 * t_u"] and Normalize(1).describe(["t_u"]) == []


@pytest.mark.parametrize("normalize", ["none", "scale", "standardize"])
@pytest.mark.parametrize(("n_inputs", "degree"), [(1, 1), (1, 2), (2, 1), (2, 3), (1, 5)])
def test_raw_units_predict_what_the_system_predicts(normalize, n_inputs, degree):
    torch.manual_seed(0)
    readings = torch.rand(20, n_inputs, dtype=torch.float64) * 60 + 20
    net = Polynomial(n_inputs, degree) if degree > 1 else Line(n_inputs)
    model = system(net, normalize, n_inputs).double()
    model.normalize.fit(readings)
    with torch.no_grad():
        net.weight.normal_()
        net.bias.normal_()
    fit = linear_fit(net, model.normalize, readings, readings[:, 0])
    weight, bias = fit.raw(*trained_parameters(net))
    raw_prediction = net.features(readings) @ weight + bias  # the net's features of the raw readings
    torch.testing.assert_close(raw_prediction, model(readings).detach(), rtol=1e-8, atol=1e-8)


def test_raw_units_of_the_book_scale():
    model = system(normalize="scale")
    with torch.no_grad():
        model.net.weight.fill_(5.3671)
        model.net.bias.fill_(-17.3012)
    weight, bias = linear_fit(model.net, model.normalize, t_u, T_C).raw(*trained_parameters(model.net))
    assert weight.item() == pytest.approx(0.53671, abs=1e-6)
    assert bias == pytest.approx(-17.3012, abs=1e-5)


class Waves(nn.Module):
    """Linear in its parameters, but sin(t_un) is no combination of sin(t_u): no raw-unit equation."""

    def __init__(self) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    def feature_names(self, inputs: list[str]) -> list[str]:
        return [f"sin({c})" for c in inputs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.weight + self.bias


def test_a_net_is_linear_only_by_its_features_and_raw_units_only_where_exact():
    assert linear_fit(MLP(), Normalize(1), t_u, T_C) is None
    standardized = Normalize(1, "standardize")
    standardized.fit(t_u)
    waves = linear_fit(Waves(), standardized, t_u, T_C)
    assert waves is not None and waves.raw_map is None and waves.raw(torch.ones(1), 0.0) is None
    raw = linear_fit(Waves(), Normalize(1), t_u, T_C)  # no normalisation: the raw features are the net's
    assert raw.raw(torch.tensor([2.0]), 3.0)[0].item() == pytest.approx(2.0) and raw.raw_map is not None
    # The optimum of its own family: least squares on its features.
    weight, bias = waves.optimum
    columns = torch.sin(standardized(t_u.double()))
    expected = torch.linalg.lstsq(
        torch.cat([columns, torch.ones(11, 1, dtype=torch.float64)], 1), T_C.double()[:, None]
    )
    assert [weight.item(), bias] == pytest.approx(expected.solution.ravel().tolist(), rel=1e-9)


def test_nets_start_as_the_book_starts_and_name_their_features():
    polynomial = Polynomial(2, degree=2, init_weight=0.5, init_bias=3.0)
    assert polynomial.feature_names(["t_u", "t_x"]) == ["t_u", "t_x", "t_u^2", "t_x^2"]
    assert polynomial.weight.tolist() == [0.5] * 4 and polynomial.bias.item() == 3.0
    assert Line().weight.tolist() == [1.0] and Line().bias.item() == 0.0
    with pytest.raises(ValueError, match="degree"):
        Polynomial(degree=0)


def test_chapter_6_network_is_the_books():
    net = MLP()
    assert [name for name, _ in net.named_children()] == ["hidden_linear", "hidden_activation", "output_linear"]
    assert isinstance(net.hidden_activation, nn.Tanh)
    assert sum(p.numel() for p in net.parameters()) == 25  # 1*8 + 8 and 8*1 + 1, as the book counts
    assert isinstance(MLP(hidden=20, activation=nn.ReLU).hidden_activation, nn.ReLU)
    assert system(MLP())(t_u).shape == (11,)  # (batch, 1) out of the net, (batch,) out of the system


class TwoOutputs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x], dim=1)


def test_a_net_of_the_wrong_shape_is_refused_in_one_message():
    with pytest.raises(UsageError, match=r"TwoOutputs: returns \(3, 2\) for 3 rows; a net must return \(batch,\)"):
        check_net(system(TwoOutputs()), 1)
    with pytest.raises(UsageError, match=r"its forward fails on a \(3, 2\) batch"):
        check_net(system(MLP(n_inputs=1)), 2)


def test_least_squares_of_millions_of_rows_by_chunks_equals_one_solve(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    readings = torch.rand(50_000, 1, generator=generator) * 130 - 20
    t_c = (readings[:, 0] - 32) * 5 / 9 + torch.randn(50_000, generator=generator) * 0.5
    cubic = Polynomial(degree=3).features
    for features in (lambda x: x, cubic):
        whole = least_squares(features, readings, t_c)
        monkeypatch.setattr(linear_module, "CHUNK_ROWS", 7_000)  # 8 chunks folded by QR
        chunked = least_squares(features, readings, t_c)
        monkeypatch.undo()
        assert torch.allclose(chunked[0], whole[0], rtol=1e-9) and chunked[1] == pytest.approx(whole[1], rel=1e-9)


class Unnamed(nn.Module):
    """Linear in its parameters, with `features` but no `feature_names`."""

    def __init__(self) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(2)), nn.Parameter(torch.zeros(()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x**2], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.weight + self.bias


def test_feature_names_are_optional():
    fit = linear_fit(Unnamed(), Normalize(1), t_u, T_C)
    assert fit.names(["t_u"]) == ["feature_1", "feature_2"]
    assert fit.optimum[0].numel() == 2 and fit.raw_map is not None
