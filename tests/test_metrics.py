"""The epoch's metrics of five running sums against torchmetrics' own MSE, MAE and R² of all the rows at once."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

from thermometer.metrics import RegressionMetrics


@settings(max_examples=50, deadline=None)
@given(rows=st.integers(2, 200), batch_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_the_sums_over_mini_batches_give_torchmetrics_numbers_of_all_the_rows(rows, batch_size, seed):
    generator = torch.Generator().manual_seed(seed)
    t_c = 30 * torch.randn(rows, generator=generator) + 10
    t_p = t_c + 5 * torch.randn(rows, generator=generator)
    metrics = RegressionMetrics("val/")
    for start in range(0, rows, batch_size):
        metrics.update(t_p[start : start + batch_size], t_c[start : start + batch_size])
    values = metrics.compute()
    assert values["val/loss"] == pytest.approx(mean_squared_error(t_p, t_c).item(), rel=1e-5)
    assert values["val/mae"] == pytest.approx(mean_absolute_error(t_p, t_c).item(), rel=1e-5)
    assert values["val/r2"] == pytest.approx(r2_score(t_p, t_c).item(), rel=1e-4, abs=1e-6)
    metrics.reset()
    metrics.update(t_p[:1], t_c[:1])
    assert metrics.compute()["val/loss"] == pytest.approx((t_p[0] - t_c[0]).square().item(), rel=1e-6)


def test_one_target_value_has_no_r2_as_torch_would_divide_by_its_zero_variance():
    metrics = RegressionMetrics("val/")
    metrics.update(torch.tensor([3.0, 5.0]), torch.tensor([4.0, 4.0]))
    assert metrics.compute()["val/r2"] == -math.inf
    metrics.reset()
    metrics.update(torch.tensor([4.0]), torch.tensor([4.0]))
    assert math.isnan(metrics.compute()["val/r2"])
