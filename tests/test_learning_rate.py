"""The learning rate's limit: 2/λ_max of the loss's Hessian, exact for plain SGD on a net linear in its parameters."""

import numpy as np
import pytest
import torch

from thermometer.cli import main
from thermometer.data import TemperatureDataModule
from thermometer.linear import learning_rate_limit, linear_fit
from thermometer.nets import Line, Polynomial
from thermometer.system import Normalize

RAW_LIMIT = 3.3994e-4  # ../shared/reference.md: raw t_u, all 11 readings


def readings(book_split: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The chapter's readings: all eleven, or the nine training rows of the book's split."""
    data = TemperatureDataModule(val_fraction=0.2 if book_split else 0.0)
    data.load()
    return data.train_inputs, data.train_targets


@pytest.mark.parametrize(
    ("scale", "book_split", "limit", "condition"),
    [
        (1.0, False, 3.3994e-4, 33599),
        (1.0, True, 3.7051e-4, 26675),
        (0.1, False, 0.032978, 357.0),
        (0.1, True, 0.035864, 284.7),
    ],
)
def test_the_limit_is_two_over_numpys_largest_eigenvalue(scale, book_split, limit, condition):
    t_u, t_c = readings(book_split)
    fit = linear_fit(Line(), Normalize(how="scale" if scale != 1 else "none", scale=scale), t_u, t_c)
    x = t_u.double().numpy()[:, 0] * float(np.float32(scale))  # the scale the net sees, a float32 buffer
    design = np.stack([x, np.ones_like(x)], axis=1)
    eigenvalues = np.linalg.eigvalsh(2 / len(x) * design.T @ design)
    assert fit.curvature == pytest.approx((eigenvalues[-1], eigenvalues[0]), rel=1e-9)
    stable, ratio = learning_rate_limit(fit.curvature)
    assert stable == pytest.approx(2 / eigenvalues[-1], rel=1e-9) == pytest.approx(limit, rel=1e-4)
    assert ratio == pytest.approx(condition, rel=1e-4)


def raw_sgd(lr: float) -> list[str]:
    """The book's first experiments' settings (raw t_u, all eleven readings) at this lr, for 3000 epochs."""
    return ["--data.val_fraction", "0", "--model.normalize", "none", "--model.optimizer.lr", repr(lr)]


LONG = ["--trainer.max_epochs", "3000", "--early_stopping.patience", "3000"]


def test_sgd_at_098_of_the_limit_converges_over_3000_epochs(cli, capsys):
    m = cli(*raw_sgd(0.98 * RAW_LIMIT), *LONG).metrics
    assert m["diverged"] is None and m["epochs"] == 3000
    assert m["stable_lr"] == pytest.approx(RAW_LIMIT, rel=1e-4)
    assert m["condition_number"] == pytest.approx(33599, rel=1e-4)
    assert m["last_epoch"]["train/loss"] < 1763.8846 / 50  # the book's first loss, falling all the way
    said = capsys.readouterr().out
    assert "Learning rate: SGD lr 0.000333141; stable below 0.0003399 (2/λ_max), valley 33599× steeper" in said


def test_sgd_at_102_of_the_limit_diverges_and_is_told_a_rate_below_it(cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(*raw_sgd(1.02 * RAW_LIMIT), *LONG)
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert "lower the learning rate below its limit 2/λ_max = 0.0003399 (--model.optimizer.lr 0.0003)" in error


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ([], True),  # standardised: a round bowl, limit 1
        (["--model.optimizer.weight_decay", "0.5"], True),  # weight decay adds to every eigenvalue
        (["--model.net", "Polynomial", "--model.net.degree", "2"], True),
        (["--model.optimizer.momentum", "0.9"], False),  # heavy ball: another bound
        (["--model.optimizer", "Adam"], False),
        (["--data.batch_size", "4"], False),  # mini-batches: each step sees another bowl
        (["--model.net", "MLP"], False),  # not linear in its parameters
    ],
)
def test_only_plain_full_batch_sgd_on_a_linear_net_is_told_its_limit(cli, capsys, options, said):
    m = cli("--trainer.max_epochs", "3", *options).metrics
    printed = capsys.readouterr().out
    if not said:
        assert m["stable_lr"] is m["condition_number"] is m["suggested_lr"] is None
        assert "Learning rate:" not in printed
        return
    data = TemperatureDataModule()
    data.load()
    features = linear_fit(*_net_and_normalize(options), data.train_inputs, data.train_targets).features
    design = torch.cat([features(data.train_inputs), torch.ones(len(data.train_inputs), 1, dtype=torch.float64)], 1)
    eigenvalues = torch.linalg.eigvalsh(2 / len(design) * design.T @ design).numpy()
    decay = 0.5 if "--model.optimizer.weight_decay" in options else 0.0
    assert m["stable_lr"] == pytest.approx(2 / (eigenvalues[-1] + decay), rel=1e-6)
    assert m["condition_number"] == pytest.approx((eigenvalues[-1] + decay) / (eigenvalues[0] + decay), rel=1e-6)
    assert 0.5 * m["stable_lr"] / 10 < m["suggested_lr"] < m["stable_lr"]
    assert f"Learning rate: SGD lr 0.2; stable below {m['stable_lr']:.4g} (2/λ_max)" in printed
    if not options:
        assert m["stable_lr"] == pytest.approx(1, rel=1e-6) and "a round bowl" in printed


def _net_and_normalize(options: list[str]) -> tuple[torch.nn.Module, Normalize]:
    """The net and standardisation the default run trains with these options, on the book's training rows."""
    net = Polynomial(degree=2) if "Polynomial" in options else Line()
    normalize = Normalize(how="standardize")
    data = TemperatureDataModule()
    data.load()
    normalize.fit(data.train_inputs)
    return net, normalize


def test_the_landscape_names_the_condition_number(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main([*raw_sgd(1e-4), "--trainer.max_epochs", "3", "--trainer.enable_progress_bar=false"])
    title = cli.report.landscape(cli.trainer).axes[0].get_title()
    assert title.endswith("condition number λ_max/λ_min = 33599: a narrow valley")
