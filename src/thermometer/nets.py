"""The networks: plain `nn.Module`s from normalised readings `(batch, inputs)` to predictions `(batch,)`.

They know nothing of files, units, loggers or Lightning; `Thermometer` (system.py) normalises the readings in front
of them. Any other `nn.Module` with that forward works too: `--model.net my.module.Class --model.net.<arg> value`.

A net that is linear in its parameters says so by one method, `features(x)`, such that
`net(x) = features(x) @ net.weight + net.bias`: the closed form, the raw-unit equation, the landscape and the
learning rate's limit are derived from it (linear.py). `feature_names(inputs)` names those columns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn


class Line(nn.Module):
    """The book's model, `t_p = w * t_u + b`: one weight per input and a bias.

    Args:
        n_inputs: number of input columns (told by the data).
        init_weight: starting value of every weight; the book starts from 1.0.
        init_bias: starting value of the bias; the book starts from 0.0.

    """

    def __init__(self, n_inputs: int = 1, init_weight: float = 1.0, init_bias: float = 0.0) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        columns = self.features(torch.zeros(1, n_inputs)).shape[1]
        self.weight = nn.Parameter(torch.full((columns,), float(init_weight)))
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The columns the weights multiply: the inputs themselves."""
        return x

    def feature_names(self, inputs: Sequence[str]) -> list[str]:
        """The name of each column of `features`, from the names of the inputs."""
        return list(inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.weight + self.bias


class Polynomial(Line):
    """The chapter's exercise, `t_p = w2 * t_u**2 + w1 * t_u + b`, to any degree, in each input.

    Args:
        n_inputs: number of input columns (told by the data).
        degree: highest power of each input; 1 is the line, 2 the chapter's exercise.
        init_weight: starting value of every weight.
        init_bias: starting value of the bias.

    """

    def __init__(self, n_inputs: int = 1, degree: int = 2, init_weight: float = 1.0, init_bias: float = 0.0) -> None:
        if not 1 <= degree <= 60:
            raise ValueError(
                f"degree is {degree}; it must be 1 to 60 (a standardised reading of 4 to the power 64 is beyond "
                "float32). Set --model.net.degree."
            )
        self.degree = degree
        super().__init__(n_inputs, init_weight, init_bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """`x, x**2, ..., x**degree` for each input column, powers outermost."""
        return torch.cat([x**power for power in range(1, self.degree + 1)], dim=1)

    def feature_names(self, inputs: Sequence[str]) -> list[str]:
        """`t_u`, `t_u^2`, ...: the name of each column of `features`."""
        return [c if k == 1 else f"{c}^{k}" for k in range(1, self.degree + 1) for c in inputs]


class MLP(nn.Sequential):
    """Chapter 6's network: `Linear(n_inputs, hidden) -> activation -> Linear(hidden, 1)`, named as the book names it.

    Args:
        n_inputs: number of input columns (told by the data).
        hidden: hidden units; the book uses 8 (and 20 in its exercise).
        activation: the class of the nonlinearity between the two layers; the book's `torch.nn.Tanh` by default.

    """

    def __init__(self, n_inputs: int = 1, hidden: int = 8, activation: Callable[[], nn.Module] = nn.Tanh) -> None:
        if hidden < 1:
            raise ValueError(f"hidden is {hidden}; a network needs at least 1 hidden unit. Set --model.net.hidden.")
        super().__init__(
            OrderedDict(
                hidden_linear=nn.Linear(n_inputs, hidden),
                hidden_activation=activation(),
                output_linear=nn.Linear(hidden, 1),
            )
        )
