"""The epoch's regression metrics, MSE (the loss), MAE and R², as one torchmetrics `Metric` of five running sums."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

SUMS = ("squared_error", "absolute_error", "target", "squared_target", "count")


class RegressionMetrics(Metric):
    """`loss` (the mean squared error), `mae` and `r2` of all rows seen since the last reset, under one prefix.

    torchmetrics' `MeanSquaredError`, `MeanAbsoluteError` and `R2Score` keep overlapping sums in three objects;
    on eleven readings their updates, computes and resets cost more each epoch than the training step. These are
    the same sums (float64, reduced across processes by torchmetrics), updated, computed and reset once.

    Args:
        prefix: put before each name, e.g. `train/`.

    """

    full_state_update = False

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.add_state("sums", default=torch.zeros(len(SUMS), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, t_p: torch.Tensor, t_c: torch.Tensor) -> None:
        # Errors in the predictions' own dtype, as the loss sees them (the book's float32 loss overflows to inf at
        # epoch 11 of 01_diverge), summed in float64; the five sums in one tensor, one addition.
        error, target = t_p - t_c, t_c.double()
        self.sums += torch.stack(
            [
                error.square().sum(dtype=torch.float64),
                error.abs().sum(dtype=torch.float64),
                target.sum(),
                target.square().sum(),
                torch.tensor(len(t_c), dtype=torch.float64),
            ]
        )

    def compute(self) -> dict[str, float]:
        # In Python floats (float64, as the sums): the same three numbers in eight tensor operations on scalars cost
        # more than the epoch's training step.
        squared_error, absolute_error, target, squared_target, count = self.sums.tolist()
        mse = squared_error / count
        variance = squared_target / count - (target / count) ** 2
        r2 = 1 - mse / variance if variance else -math.inf if mse else math.nan  # one target value: as torch divides
        return {self.prefix + "loss": mse, self.prefix + "mae": absolute_error / count, self.prefix + "r2": r2}
