"""The chapter by hand (section 5.4): the gradient of the loss derived analytically, or estimated by differences.

Pure torch, no Lightning. `Thermometer` uses them with `--model.gradient analytic | finite_difference` in place of
autograd's `loss.backward()`; the optimizer steps as it does after autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

Gradient = Literal["autograd", "analytic", "finite_difference"]


def dloss_fn(t_p: torch.Tensor, t_c: torch.Tensor, loss_fn: nn.Module) -> torch.Tensor:
    """The derivative of the loss with respect to each prediction: `2 (t_p - t_c) / N` for the mean squared error.

    For the mean absolute error it is `sign(t_p - t_c) / N`: it does not shrink near the minimum.
    """
    if isinstance(loss_fn, nn.MSELoss):
        return 2 * (t_p - t_c) / t_p.numel()
    return torch.sign(t_p - t_c) / t_p.numel()


def analytic(net: nn.Module, x: torch.Tensor, t_c: torch.Tensor, loss_fn: nn.Module) -> list[torch.Tensor]:
    """The chapter's `grad_fn` for a net linear in its parameters, `t_p = features(x) @ weight + bias`.

    By the chain rule, `dloss/dw = dloss/dt_p · dt_p/dw` with `dt_p/dw = features(x)` (the book's `dmodel_dw`, `t_u`
    for the line) and `dt_p/db = 1` (`dmodel_db`). Returns the gradients of `[weight, bias]`.
    """
    features = net.features(x)
    dloss_dtp = dloss_fn(features @ net.weight + net.bias, t_c, loss_fn)
    return [features.T @ dloss_dtp, dloss_dtp.sum()]


def finite_difference(
    loss: Callable[[], torch.Tensor], parameters: Sequence[torch.Tensor], delta: float
) -> list[torch.Tensor]:
    """The chapter's rate of change: `(loss(p + δ) - loss(p - δ)) / 2δ` for each parameter in turn.

    Two evaluations of the loss per parameter per step. For a loss quadratic in the parameters (the mean squared
    error of a net linear in them) the central difference is exact whatever δ: its third derivative is zero, so only
    rounding separates it from the derivative.
    """
    gradients = []
    with torch.no_grad():
        for parameter in parameters:
            gradient = torch.zeros_like(parameter)
            flat, flat_gradient = parameter.view(-1), gradient.view(-1)
            for i in range(flat.numel()):
                kept = flat[i].item()
                flat[i] = kept + delta
                up, above = flat[i].item(), loss().item()
                flat[i] = kept - delta
                down, below = flat[i].item(), loss().item()
                flat[i] = kept
                # Divided by the step the weights' float32 really took, not the δ asked for.
                flat_gradient[i] = (above - below) / (up - down)
            gradients.append(gradient)
    return gradients
