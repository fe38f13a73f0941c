"""The diagnoses tell the true cases from the false ones: overfitting, not converged, diverged.

The rules on curves made by hand, then the newcomer's two false reports and the book's true case end to end.
"""

import math

import pytest
import torch
from torch import nn

from tests.book import BOOK_TRAIN_ROWS, T_C, T_U
from thermometer.report import diagnosis


def curve(values: list[float]) -> dict[int, float]:
    return {epoch: value for epoch, value in enumerate(values, start=1)}


def test_overfitting_is_validation_rising_after_the_training_rows_were_fitted():
    train = curve([10, 5, 2.0, 1.9, 1.8, 1.7])
    val = curve([12, 6, 3.0, 3.2, 3.5, 3.9])
    line = 2.5  # the best straight line's training loss: the model fits the training rows better
    assert diagnosis.overfitting(train, val, line) == {
        "since_epoch": 3,
        "val/loss": [3.0, 3.9],
        "train/loss": [2.0, 1.7],
    }
    # The same rise, while the training loss was still far from fitted: a model passing near the two validation
    # readings on its way to the optimum, not one learning the noise.
    assert diagnosis.overfitting(curve([160, 40, 10, 5, 3, 2]), curve([2.1, 3, 5, 7, 9, 10]), line) is None
    assert diagnosis.overfitting(train, curve([12, 6, 3.0, 3.1, 3.2, 3.25]), line) is None  # within 10 % of its min
    assert diagnosis.overfitting(train, {}, line) is None
    # Validation rising while training falls, but the model fits worse than a line: it is failing, not overfitting.
    assert diagnosis.overfitting(curve([90, 89, 88, 87, 86, 85]), curve([1.6, 5, 20, 60, 100, 126]), 3.0) is None


def test_not_converged_against_the_closed_form_or_the_trend():
    said = diagnosis.not_converged(curve([40, 35, 31.5]), 31.5, 3.01, 3.01)
    assert said == "train loss 31.5 is 10.5x the optimum's 3.01"
    assert diagnosis.not_converged(curve([4, 3.02]), 3.0125, 3.01229, 3.01229) is None  # within 1 %
    falling = curve([100 - k for k in range(50)])  # no optimum known: still falling 1 % or more
    said = diagnosis.not_converged(falling, 1.0, None, 3.0)
    assert said == "train/loss still fell 16 % over the last 10 epochs, to 51"
    flat = curve([100, 50, *[2.0] * 48])
    assert diagnosis.not_converged(flat, 2.0, None, 3.0) is None
    said = diagnosis.not_converged(flat, 6.97, None, 3.01)  # a net that has not learned what a line can
    assert said == "train loss 6.97 is above the best straight line's 3.01"


def test_divergence_names_the_first_loss_that_blew_up_and_the_last_finite_one():
    losses = {"train/loss": curve([1763.88, 5.8e6, math.inf]), "val/loss": {}}
    assert diagnosis.divergence(losses) == "train/loss became inf at epoch 3 (last finite 5.8e+06 at epoch 2)"
    rising = {"train/loss": curve([150.0, 80.0, 200.0])}
    assert diagnosis.divergence(rising) == "train/loss rose from 150 at epoch 1 to 200 at epoch 3"
    assert diagnosis.divergence({"train/loss": curve([150.0, 80.0, 3.0])}) is None


class NotANumberInTraining(nn.Module):
    """A line whose predictions are NaN in training mode only: reports, in eval mode, see a line."""

    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * (float("nan") if self.training else 1.0)


def test_a_loss_that_was_nan_before_any_step_does_not_blame_the_learning_rate(cli, capsys):
    assert diagnosis.before_any_step(curve([math.nan, math.nan]), 2) is None  # epoch 1 took steps too
    assert diagnosis.before_any_step(curve([1763.88, math.inf]), 1) is None  # the first step blew it up
    with pytest.raises(SystemExit) as diverged:
        cli("--model.net", "tests.test_diagnosis.NotANumberInTraining")
    err = capsys.readouterr().err
    assert diverged.value.code == 1 and "train/loss became nan at epoch 1" in err, err
    assert "It was not a number before the first step, so no learning rate can help" in err
    assert "lower the learning rate" not in err


def test_the_newcomers_overfitting_at_epoch_1_is_gone(cli):
    m = cli("--data.split_seed", "7", "--data.batch_size", "4").metrics
    assert m["overfitting"] is None
    assert m["best_epoch"] == 1 and m["val_loss"] < m["closed_form"]["val_loss"]  # the optimum's own val is worse


def test_the_newcomers_early_stop_that_isnt_finished_says_so(cli, capsys):
    m = cli("--model.normalize", "none", "--model.optimizer.lr", "1e-4").metrics  # the README's example
    assert m["stop_reason"].startswith("early stopping") and m["epochs"] < 30
    # More patience would not do: along raw t_u's flat direction, lr 1e-4 needs some 170 000 more epochs.
    said = "train loss 31.51 is 10.5x the optimum's 3.012: at lr 0.0001, SGD needs about 1.7e+05 more epochs"
    assert m["not_converged"].startswith(said)
    assert "--model.normalize standardize" in m["not_converged"] and "patience" not in m["not_converged"]
    assert f"Not converged: {m['not_converged']}" in capsys.readouterr().out


def test_a_converged_run_is_not_diagnosed(default_run):
    from tests.conftest import Run

    m = Run(default_run).metrics
    assert m["overfitting"] is m["not_converged"] is m["diverged"] is None


def test_a_limit_no_float32_step_can_keep_under_is_not_offered_as_a_learning_rate():
    said = diagnosis.cure("SGD", 0.2, "none", stable_lr=2.3e-229, condition_number=math.inf, suggested_lr=2e-229)
    assert "--model.optimizer.lr 2e-229" not in said and "below any useful learning rate" in said
    assert "--model.normalize standardize" in said


def test_a_rate_far_below_its_limit_is_told_to_rise_not_to_train_longer():
    # Figure 5.14 A: 05_split at lr 1e-7, 300 epochs. Ten times the epochs would get nowhere at that rate.
    advice = diagnosis.more_training("max_epochs=300 reached", 3000, 300, "SGD", 1e-7, "scale", 0.035864, 0.03)
    assert (
        advice.startswith("lr 1e-07 is 3.59e+05x below its limit 2/λ_max = 0.03586")
        and "--model.optimizer.lr 0.03" in advice
    )
    assert "max_epochs" not in advice
    near = diagnosis.more_training("max_epochs=300 reached", 3000, 300, "SGD", 1e-2, "scale", 0.035864, 0.03)
    assert near == "train longer (--trainer.max_epochs 3000)"
    timed = diagnosis.more_training("max_time reached after 2 s of training", 10, -1, "SGD", 1e-2, "scale", 0.035, 0.03)
    assert timed == "train longer (a longer --trainer.max_time)"  # not --trainer.max_epochs -10


def test_the_epochs_a_valley_needs_are_what_gradient_descent_takes():
    # 05_split's rows in t_un, plain gradient descent in float64 from the book's w = 1, b = 0 at lr 1e-2.
    x = torch.stack([0.1 * T_U[BOOK_TRAIN_ROWS].double(), torch.ones(9, dtype=torch.float64)], dim=1)
    y = T_C[BOOK_TRAIN_ROWS].double()
    hessian = 2 / 9 * x.T @ x
    low, high = torch.linalg.eigvalsh(hessian).tolist()
    optimum = ((x @ torch.linalg.lstsq(x, y).solution - y) ** 2).mean()

    def descend(params: torch.Tensor, steps: int) -> torch.Tensor:
        for _ in range(steps):
            params = params - 1e-2 * 2 / 9 * x.T @ (x @ params - y)
        return params

    def gap(params: torch.Tensor) -> float:
        return (((x @ params - y) ** 2).mean() / optimum - 1).item()

    after = descend(torch.tensor([1.0, 0.0], dtype=torch.float64), 300)
    needed = diagnosis.epochs_needed(1e-2, 2 / high, high / low, gap(after))
    assert 1000 < needed < 2000
    assert gap(descend(after, math.ceil(needed))) <= diagnosis.CONVERGED_GAP < gap(descend(after, int(0.9 * needed)))


def test_a_penalised_run_is_judged_by_its_trend_not_by_the_unpenalised_optimum(cli):
    # Weight decay pulls the line off the least-squares optimum; the run is done once its loss is flat.
    m = cli("--model.optimizer.weight_decay", "0.5").metrics
    assert m["train_loss"] > 1.1 * m["optimum"]["train_loss"] and m["not_converged"] is None


def test_a_run_stopped_on_a_bump_is_interrupted_not_diverged():
    bump = {"train/loss": curve([5.0, 3.0, 6.0])}  # above its first epoch when the signal came
    assert diagnosis.divergence(bump).startswith("train/loss rose from 5 at epoch 1 to 6 at epoch 3")
    assert diagnosis.divergence(bump, finished=False) is None  # it resumes, and may well come down
    blown = diagnosis.divergence({"train/loss": curve([5.0, math.inf])}, finished=False)
    assert blown.startswith("train/loss became inf")
