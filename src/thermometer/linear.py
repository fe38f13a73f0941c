"""What only a net linear in its parameters has, `net(x) = features(x) @ weight + bias`: pure torch, no Lightning.

The closed-form optimum (least squares) and the same line or curve in the units of the raw readings. Everything
here is derived from the net's one capability, `features`; `linear_fit` is the one place that asks for it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from thermometer.errors import UsageError

CHUNK_ROWS = 262_144
"""Rows converted to float64 at a time, so that millions of readings never need a float64 copy of them all."""


def design_chunks(
    features: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
) -> Iterator[torch.Tensor]:
    """`[features(inputs), 1, targets]` in float64, `CHUNK_ROWS` rows at a time."""
    for start in range(0, len(targets), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        columns = features(inputs[rows].double())
        if not torch.isfinite(columns).all():
            raise UsageError("the net's features of the training readings overflow; lower its degree or normalize.")
        ones = torch.ones(len(columns), 1, dtype=torch.float64)
        yield torch.cat([columns, ones, targets[rows].double()[:, None]], dim=1)


def least_squares(
    features: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """The weights and bias minimising the mean squared error of `features(inputs) @ weight + bias`, in float64.

    Past `CHUNK_ROWS` rows, each chunk of `[features, 1, target]` is folded into the R of a running QR
    decomposition (tall-skinny QR), whose few rows give the same least-squares problem. The columns are scaled to
    one size before solving: `gelsd` would drop a column 1e16 times smaller or larger than the others.
    """
    system, several = None, len(targets) > CHUNK_ROWS
    for chunk in design_chunks(features, inputs, targets):
        system = chunk if system is None else torch.cat([system, chunk])
        if several:
            system = torch.linalg.qr(system).R
    design, target = system[:, :-1], system[:, -1:]
    size = design.abs().amax(dim=0)
    size = torch.where(size > 0, size, torch.ones_like(size))
    solution = torch.linalg.lstsq(design / size, target, driver="gelsd").solution.ravel() / size
    return solution[:-1], solution[-1].item()


def best_line(inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The least-squares straight line in the raw readings, `t_c = w * t_u + b`: every run's baseline."""
    return least_squares(lambda x: x, inputs, targets)


LEAST_ABSOLUTE_ROWS = 400
"""Up to this many rows the least-absolute-deviation line is found exactly, by trying every pair of readings."""


def least_absolute_line(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float] | None:
    """The line `y = w * x + b` of least mean absolute error, exactly; None past `LEAST_ABSOLUTE_ROWS` rows.

    The mean absolute error is convex and piecewise linear in `(w, b)`: its minimum lies at a corner, where the line
    passes through two of the readings (as a median passes through one). Each line through two readings of distinct
    `x` is tried on every row, in float64.
    """
    if len(y) > LEAST_ABSOLUTE_ROWS:
        return None
    x, y = x.double(), y.double()
    first, second = torch.triu_indices(len(x), len(x), offset=1)
    distinct = x[first] != x[second]
    first, second = first[distinct], second[distinct]
    if not len(first):
        return None
    weight = (y[second] - y[first]) / (x[second] - x[first])
    bias = y[first] - weight * x[first]
    errors = (weight[:, None] * x[None, :] + bias[:, None] - y[None, :]).abs().mean(dim=1)
    best = errors.argmin()
    return weight[best].item(), bias[best].item()


def mean_squared_error(
    predict: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor
) -> float | None:
    """The MSE of `predict` (float64 readings in, predictions out) on some rows, by chunks; None for no rows."""
    if not len(targets):
        return None
    squared = 0.0
    for start in range(0, len(targets), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        squared += (predict(inputs[rows].double()) - targets[rows].double()).square().sum().item()
    return squared / len(targets)


def line(weight: torch.Tensor, bias: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """`x -> x @ weight + bias`: predictions of a straight line, for `mean_squared_error`."""
    return lambda x: x @ weight + bias


@dataclass
class LinearFit:
    """A net linear in its parameters behind its normalisation: `t_p = features(normalize(t_u)) @ weight + bias`.

    Both modules are float64 copies, for exact numbers; the weights are read from the live net.
    """

    net: nn.Module
    normalize: nn.Module
    raw_map: torch.Tensor | None = None
    """`[w_raw, b_raw] = raw_map @ [w, b]`: the same predictions from the features of raw readings, if they can."""
    optimum: tuple[torch.Tensor, float] | None = None
    """The closed-form optimum of the net's own family on the training rows, in the units it trains in."""
    gram: torch.Tensor | None = None
    """`ZᵀZ / N`, `Z = [features, 1, t_c]` of the training rows (see `gram`): the training loss anywhere, cheaply."""
    curvature: tuple[float, float] | None = None
    """`(λ_max, λ_min)` of the training loss's Hessian in the coordinates the net trains in (see `curvature`)."""

    def names(self, columns: list[str]) -> list[str]:
        """The name of each feature, by the net's `feature_names` if it has one, else `feature_1`, `feature_2`, ..."""
        if callable(getattr(self.net, "feature_names", None)):
            return self.net.feature_names(columns)
        return [f"feature_{k}" for k in range(1, self.optimum[0].numel() + 1)]

    def features(self, t_u: torch.Tensor) -> torch.Tensor:
        """The columns the weights multiply, as the net sees the readings (normalised)."""
        return self.net.features(self.normalize(t_u.double()))

    def raw(self, weight: torch.Tensor, bias: float) -> tuple[torch.Tensor, float] | None:
        """Weight and bias in the units of the raw readings, or None if raw features cannot express the net."""
        if self.raw_map is None:
            return None
        raw = self.raw_map @ torch.cat([weight.double().ravel(), torch.tensor([float(bias)], dtype=torch.float64)])
        return raw[:-1], raw[-1].item()

    def raw_vector(self, parameters: torch.Tensor) -> torch.Tensor:
        """`parameter_vector` in raw units where the net can say them so, else as it is."""
        return parameters if self.raw_map is None else self.raw_map @ parameters


def trained_parameters(net: nn.Module) -> tuple[torch.Tensor, float]:
    """The weights and bias of a net linear in its parameters, as it trains them (float64)."""
    return net.weight.detach().double().ravel(), net.bias.detach().double().item()


def parameter_vector(net: nn.Module) -> torch.Tensor:
    """`[weight..., bias]` of a net linear in its parameters, in one float64 tensor: cheap enough for every epoch."""
    return torch.cat([net.weight.detach().ravel(), net.bias.detach().reshape(1)]).double()


def linear_fit(net: nn.Module, normalize: nn.Module, t_u: torch.Tensor, t_c: torch.Tensor) -> LinearFit | None:
    """The net seen as linear in its parameters if it has `features(x)`, else None: the one place that asks.

    `t_u` and `t_c` are the training rows: the optimum is theirs, and the raw-unit equation is checked over their range.
    """
    if not callable(getattr(net, "features", None)):
        return None
    fit = LinearFit(copy.deepcopy(net).double(), copy.deepcopy(normalize).double())
    fit.raw_map = raw_map(fit, t_u)
    fit.optimum = least_squares(fit.features, t_u, t_c)
    fit.gram = gram(fit.features, t_u, t_c)
    fit.curvature = curvature(fit.gram)
    return fit


def gram(features: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """`ZᵀZ / N` for `Z = [features(inputs), 1, targets]`, by chunks in float64: the means a quadratic loss is made of.

    The training loss of `features @ w + b` is `v G vᵀ` with `v = [w, b, -1]`, whatever the number of rows.
    """
    return sum(z.T @ z for z in design_chunks(features, inputs, targets)) / len(inputs)


def curvature(gram: torch.Tensor) -> tuple[float, float]:
    """The largest and smallest eigenvalues of the MSE's Hessian `H = (2/N) XᵀX`, `X = [features(inputs), 1]`.

    For a net linear in its parameters the loss is a quadratic bowl whose Hessian is this constant matrix, twice the
    `gram` without its targets' row and column. Gradient descent with step `lr` shrinks the error along each
    eigenvector by `1 - lr·λ` a step, so it converges only for `lr < 2 / λ_max`, and `λ_max / λ_min` says how much
    steeper the valley is one way than the other.
    """
    eigenvalues = torch.linalg.eigvalsh(2 * gram[:-1, :-1])
    return eigenvalues[-1].item(), eigenvalues[0].item()


def learning_rate_limit(curvature: tuple[float, float], weight_decay: float = 0.0) -> tuple[float, float]:
    """`(2 / λ_max, λ_max / λ_min)` for full-batch gradient descent, whose weight decay adds to every eigenvalue.

    The condition number is infinite when the smallest eigenvalue is lost in float64's rounding of the largest.
    """
    largest, smallest = (value + weight_decay for value in curvature)
    flat = smallest <= 1e-13 * largest
    return 2 / largest, math.inf if flat else largest / smallest


def suggested_learning_rate(curvature: tuple[float, float], weight_decay: float = 0.0) -> float:
    """The fastest step for a quadratic bowl, `2 / (λ_max + λ_min)`, rounded down to one significant digit."""
    largest, smallest = (value + weight_decay for value in curvature)
    best = 2 / (largest + smallest)
    exponent = math.floor(math.log10(best))
    # Standardised readings give 0.4999999 for the round bowl's 0.5: within float32's rounding, take the 0.5.
    rounded = float(f"{math.floor(best / 10**exponent * (1 + 1e-6))}e{exponent}")
    return rounded if rounded < 2 / largest else float(f"{math.floor(best / 10**exponent)}e{exponent}")


def raw_map(fit: LinearFit, t_u: torch.Tensor) -> torch.Tensor | None:
    """The matrix from trained `[w, b]` to raw-unit `[w, b]`, fitted on readings spread over the training rows' range.

    For a polynomial behind an affine normalisation the raw features span the same functions and the map is exact;
    for other features it may not be, and then there is no raw-unit equation (None).
    """
    low, high = t_u.amin(dim=0).double(), t_u.amax(dim=0).double()
    width = torch.where(high > low, high - low, torch.ones_like(high))
    columns = fit.features(t_u[:1]).shape[1] + 1
    generator = torch.Generator().manual_seed(0)
    points = low + width * torch.rand(4 * columns + 8, t_u.shape[1], generator=generator, dtype=torch.float64)
    ones = torch.ones(len(points), 1, dtype=torch.float64)
    trained = torch.cat([fit.features(points), ones], dim=1)
    raw = torch.cat([fit.net.features(points), ones], dim=1)
    size = raw.abs().amax(dim=0)
    mapping = torch.linalg.lstsq(raw / size, trained, driver="gelsd").solution / size[:, None]
    exact = (raw @ mapping - trained).abs().max() <= 1e-7 * trained.abs().max()
    return mapping if exact else None
