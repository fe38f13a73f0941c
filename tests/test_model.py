import pytest
import torch
import torch.nn.functional as F

from tests.book import BOOK_TRAIN_ROWS, BOOK_VAL_ROWS, T_C, T_U
from thermometer import model as model_module
from thermometer.errors import UsageError
from thermometer.model import LitThermometer, Thermometer, least_squares, polynomial_features

t_u = T_U[:, None]


def sgd_step(model: Thermometer, lr: float) -> Thermometer:
    loss = F.mse_loss(model(t_u), T_C)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return model


def test_loss_at_the_books_start():
    assert F.mse_loss(Thermometer()(t_u), T_C).item() == pytest.approx(1763.8846, rel=1e-5)
    assert F.mse_loss(Thermometer(normalize="scale")(t_u), T_C).item() == pytest.approx(80.3643, rel=1e-5)


def test_first_gradient_on_raw_readings():
    model = Thermometer()
    F.mse_loss(model(t_u), T_C).backward()
    assert model.weight.grad.item() == pytest.approx(4517.2969, rel=1e-6)
    assert model.bias.grad.item() == pytest.approx(82.6000, rel=1e-6)


def test_one_step_as_the_book_prints():
    raw = sgd_step(Thermometer(), lr=1e-5)
    assert [raw.weight.item(), raw.bias.item()] == pytest.approx([0.95483, -0.000826], abs=1e-5)
    scaled = sgd_step(Thermometer(normalize="scale"), lr=1e-2)  # parameters in t_un = 0.1 * t_u units
    assert [scaled.weight.item(), scaled.bias.item()] == pytest.approx([1.7761, 0.1064], abs=1e-4)
    assert scaled.raw_parameters()[0].item() == pytest.approx(0.17761, abs=1e-5)


def test_least_squares_matches_the_reference():
    weight, bias = least_squares(t_u, T_C)
    assert [weight.item(), bias] == pytest.approx([0.5367719, -17.304786], abs=1e-6)
    weight, bias = least_squares(t_u[BOOK_TRAIN_ROWS], T_C[BOOK_TRAIN_ROWS])
    assert [weight.item(), bias] == pytest.approx([0.520504, -16.7986], abs=1e-4)
    for rows, mse in [(BOOK_TRAIN_ROWS, 3.01229), (BOOK_VAL_ROWS, 3.54439)]:
        t_p = t_u[rows].double() @ weight + bias
        assert F.mse_loss(t_p, T_C[rows].double()).item() == pytest.approx(mse, rel=1e-5)


def test_standardize_uses_the_rows_it_is_given():
    model = Thermometer(normalize="standardize")
    model.fit_normalization(t_u[BOOK_TRAIN_ROWS])
    t_un = (t_u[BOOK_TRAIN_ROWS] - model.center) * model.scale
    assert t_un.mean().item() == pytest.approx(0, abs=1e-6)
    assert t_un.std(correction=0).item() == pytest.approx(1, abs=1e-6)
    assert model.center.item() != pytest.approx(T_U.mean().item(), abs=1e-3)


@pytest.mark.parametrize("normalize", ["none", "scale", "standardize"])
@pytest.mark.parametrize(("n_inputs", "degree"), [(1, 1), (1, 2), (2, 1), (2, 3)])
def test_raw_parameters_predict_what_the_model_predicts(normalize, n_inputs, degree):
    torch.manual_seed(0)
    readings = torch.rand(20, n_inputs, dtype=torch.float64) * 60 + 20
    model = Thermometer(n_inputs, degree, normalize).double()
    model.fit_normalization(readings)
    with torch.no_grad():
        model.weight.normal_()
        model.bias.normal_()
    weight, bias = model.raw_parameters()
    raw_prediction = polynomial_features(readings, degree) @ weight + bias
    torch.testing.assert_close(raw_prediction, model(readings).detach(), rtol=1e-9, atol=1e-9)


def test_raw_parameters_of_the_book_scale():
    model = Thermometer(normalize="scale")
    with torch.no_grad():
        model.weight.fill_(5.3671)
        model.bias.fill_(-17.3012)
    weight, bias = model.raw_parameters()
    assert weight.item() == pytest.approx(0.53671, abs=1e-6)
    assert bias == pytest.approx(-17.3012, abs=1e-5)


def test_init_and_feature_names():
    module = LitThermometer(input_columns=["t_u", "t_x"], degree=2, init_weight=0.5, init_bias=3.0)
    assert module.feature_names == ["t_u", "t_x", "t_u^2", "t_x^2"]
    assert module.thermometer.weight.tolist() == [0.5] * 4
    assert module.thermometer.bias.item() == 3.0
    with pytest.raises(UsageError, match="degree"):
        LitThermometer(degree=0)


def test_least_squares_of_millions_of_rows_by_chunks_equals_one_solve(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    t_u = torch.rand(50_000, 1, generator=generator) * 130 - 20
    t_c = (t_u[:, 0] - 32) * 5 / 9 + torch.randn(50_000, generator=generator) * 0.5
    for degree in (1, 3):
        whole = least_squares(t_u, t_c, degree)
        monkeypatch.setattr(model_module, "CHUNK_ROWS", 7_000)  # 8 chunks folded by QR
        chunked = least_squares(t_u, t_c, degree)
        monkeypatch.undo()
        assert torch.allclose(chunked[0], whole[0], rtol=1e-9) and chunked[1] == pytest.approx(whole[1], rel=1e-9)
