"""A user's net, loss and normalisation looked at before anything runs or is written.

What no learning rate can fix (a forward that fails, predictions that are not one real number a row, readings or a
first loss that are not finite numbers) is refused in one message, `UsageError`, before any run directory exists.
Each look is in eval mode (or on a copy in training mode) and without gradients: it changes nothing a run learns.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from thermometer.errors import UsageError

if TYPE_CHECKING:
    from thermometer.system import Thermometer


def check_net(
    system: Thermometer, n_inputs: int, rows: Iterable[int] = (3, 1, 2), training_rows: Iterable[int] = ()
) -> None:
    """Refuse, in one message, a system whose net does not take `(batch, n_inputs)` or return one prediction a row.

    Its forward is tried on a batch of each of `rows` rows in eval mode, and of each of `training_rows` (the
    sizes of the run's training batches) in training mode, on a copy: the net and the run's random numbers stay
    as they were. A prediction is a real floating-point number: not an integer, a boolean or a complex number.
    """
    name = f"--model.net {type(system.net).__name__}"
    copied = copy.deepcopy(system.net) if training_rows else None  # BatchNorm's statistics move in training mode
    tries = [(n, system.net) for n in dict.fromkeys(rows)] + [(n, copied) for n in dict.fromkeys(training_rows)]
    for n, net in tries:
        mode = "in training mode " if net is copied else ""
        size = ", a size this run trains on (--data.batch_size)" if net is copied else ""
        try:
            t_p = look(net, system.normalize(torch.zeros(n, n_inputs)), training=net is copied)
        except Exception as error:  # whatever the user's forward raises
            batch = f"({n}, {n_inputs}) batch of readings{size}"
            raise UsageError(f"{name}: its forward fails {mode}on a {batch}: {said(error)}") from None
        if not isinstance(t_p, torch.Tensor) or t_p.numel() != n:
            shape = tuple(t_p.shape) if isinstance(t_p, torch.Tensor) else type(t_p).__name__
            rows_ = "row" if n == 1 else "rows"
            raise UsageError(
                f"{name}: returns {shape} {mode}for {n} {rows_}; a net must return (batch,) or (batch, 1)."
            )
        if not t_p.is_floating_point():
            dtype = str(t_p.dtype).removeprefix("torch.")
            raise UsageError(f"{name}: returns {dtype} predictions; a net must return real floating-point numbers.")
    if not any(p.requires_grad for p in system.net.parameters()):
        raise UsageError(f"{name}: it has no parameters to learn; give a net with weights, e.g. --model.net MLP.")
    if not all(torch.isfinite(p).all() for p in system.net.parameters()):
        raise UsageError(f"{name}: its initial weights are not all finite numbers; float32 holds up to ±3.4e38.")
    if system.gradient == "analytic" and not derivable(system.net, system.loss_fn):
        loss = type(system.loss_fn).__name__
        raise UsageError(
            f"--model.gradient analytic: derived by hand for nets linear in their parameters (Line, Polynomial: "
            f"a features(x) method) with MSELoss or L1Loss, not {type(system.net).__name__} with {loss}; use "
            "autograd or finite_difference."
        )


def check_start(system: Thermometer, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> None:
    """Refuse, in one message, a start that no learning rate can help: readings, predictions or loss not finite.

    On a new run's training rows, in its batches, before its first step, with the net in eval mode: what is not
    a finite number then is the scale's, the net's or the loss's doing, not the optimizer's. What the user's net or
    loss warns of in this look is left to the run, whose same calls warn of it again: a refused start gets its one
    line alone, an accepted one each warning once.
    """
    with warnings.catch_warnings(record=True):  # recorded, not raised or shown, and dropped with this look
        warnings.simplefilter("always")
        check_batches(system, inputs, targets, batch_size)


def check_batches(system: Thermometer, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> None:
    """`check_start`'s look at each batch: the readings, the net's predictions and their loss, then one step."""
    normalize = copy.deepcopy(system.normalize)
    normalize.fit(inputs)
    for start in range(0, len(targets), batch_size):
        t_un = normalize(inputs[start : start + batch_size])
        try:
            t_p = look(system.net, t_un).reshape(len(t_un))
        except Exception as error:  # whatever the user's forward raises
            name = type(system.net).__name__
            raise UsageError(f"--model.net {name}: its forward fails on the training rows: {said(error)}") from None
        try:
            with torch.no_grad():
                loss = system.loss_fn(t_p, targets[start : start + batch_size])
        except Exception as error:  # whatever a user's loss raises
            name = type(system.loss_fn).__name__
            raise UsageError(f"--model.loss {name}: fails on the net's predictions: {said(error)}") from None
        for what, value in (("readings", t_un), ("predictions", t_p), ("loss", loss)):
            if not torch.isfinite(value).all():
                raise UsageError(not_finite(system, what, "nan" if value.isnan().any() else "inf", inputs, t_p))
    check_step(system, inputs, targets, batch_size, normalize)


def check_step(
    system: Thermometer, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, normalize: nn.Module
) -> None:
    """Refuse a loss a step cannot follow, or metrics that fail on the predictions: on copies, in one line.

    The loss of the first training batch must be one real number (`reduction="mean"`) with a gradient, through the
    net, towards every weight that learns; each metric must take the predictions of every training row, as an
    epoch gives them. The run's random numbers are left as they were (a dropout draws some).
    """
    loss_name = type(system.loss_fn).__name__
    model = copy.deepcopy(nn.Sequential(normalize, system.net)).train()
    try:
        with torch.random.fork_rng(devices=[]):
            t_p = model(inputs[:batch_size]).reshape(len(inputs[:batch_size])).to(inputs.dtype)
            loss = copy.deepcopy(system.loss_fn)(t_p, targets[:batch_size])
    except Exception as error:  # whatever the user's forward or loss raises in training mode
        name = type(system.net).__name__
        raise UsageError(f"--model.net {name}: fails in training mode on the training rows: {said(error)}") from None
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise UsageError(
            f"--model.loss {loss_name}: gives {shape} {getattr(loss, 'dtype', '')}, not one real number to minimise; "
            "reduce it to its mean (reduction='mean')."
        )
    if system.gradient == "autograd" and not loss.requires_grad:
        raise UsageError(
            f"--model.net {type(system.net).__name__} with --model.loss {loss_name}: the loss has no gradient towards "
            "the weights (a forward that detaches, or leaves torch for numpy?), so no step can learn."
        )
    with torch.no_grad():
        t_p = model.eval()(inputs).reshape(len(inputs)).to(inputs.dtype)
    for name, metric in copy.deepcopy(system.train_metrics).items():
        try:
            metric.update(t_p, targets)
            metric.compute()
        except Exception as error:  # whatever a metric makes of a regression's predictions
            metric_name = name.split("/", 1)[-1]
            raise UsageError(f"--model.metrics {metric_name}: fails on the net's predictions: {said(error)}") from None


def not_finite(system: Thermometer, what: str, number: str, inputs: torch.Tensor, t_p: torch.Tensor) -> str:
    """Why the readings as normalised, the net's first predictions `t_p` or their loss are not finite numbers."""
    how = system.normalize.how
    if how == "scale":
        scale = system.normalize.scale[0].item()
        reach = (inputs.double() * scale).abs().max().item()
        if what == "readings" or reach > 10:
            happens = {
                "readings": "overflow float32 (±3.4e38)",
                "predictions": f"the net's predictions are {number}",
            }
            better = 10 ** math.floor(math.log10(1 / inputs.abs().max().item()))
            return (
                f"--model.scale {scale:g} takes the readings to {reach:.3g}, where "
                f"{happens.get(what, f'the loss is {number}')} before any step: give a scale that brings them "
                f"near 1, e.g. --model.scale {better:g}."
            )
    if what == "predictions":
        return (
            f"--model.net {type(system.net).__name__}: its predictions on the training rows are {number} before any "
            "step, so no learning rate can help: look at its forward and its initial weights."
        )
    raw = ": they are raw readings; normalise them (--model.normalize standardize)" if how == "none" else ""
    return (
        f"--model.loss {type(system.loss_fn).__name__}: {number} for the net's first predictions, before any step "
        f"(up to {t_p.abs().max().item():.3g}){raw}."
    )


def look(net: nn.Module, t_un: torch.Tensor, training: bool = False) -> Any:
    """`net(t_un)` as a look, not a step: in eval mode (or training mode) and without gradients.

    The net's mode and the random numbers a run draws are put back as they were.
    """
    mode = net.training
    net.train(training)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            return net(t_un)
    finally:
        net.train(mode)


def said(error: Exception) -> str:
    """An error's first line, for a message of one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def derivable(net: nn.Module, loss: nn.Module) -> bool:
    """Whether the chapter's hand derivation applies: a net linear in its parameters; squared or absolute error."""
    linear = callable(getattr(net, "features", None)) and {n for n, _ in net.named_parameters()} == {"weight", "bias"}
    return linear and type(loss) in (nn.MSELoss, nn.L1Loss) and loss.reduction == "mean"
