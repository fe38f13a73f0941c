"""What a run's loss curves say: diverged, overfitting, or not converged. Pure functions of the numbers.

Each curve maps an epoch (counted from 1) to the loss logged in it.
"""

from __future__ import annotations

import math
from typing import Any

Curve = dict[int, float]

OVERFIT_RISE = 1.1
"""Validation counts as rising once it is 10 % above its minimum."""
FITTED = 1.5
"""At the validation minimum the training loss was already within 1.5x of its final value: the model had fitted."""
CONVERGED_GAP = 0.01
"""A net linear in its parameters is converged within 1 % of its closed-form optimum's training loss."""
STILL_FALLING = 0.01
"""Any other net is not converged while its training loss still falls 1 % over the last tenth of the epochs."""


def divergence(curves: dict[str, Curve], finished: bool = True) -> str | None:
    """How the loss blew up, `train/loss became inf at epoch 11 (last finite 9.09e+34 at epoch 10)`, or None.

    A loss that is no longer a number, or a training loss that ended above where it started; a run stopped by a
    signal (`finished` False) may be on a bump it would have come down from, so only the first counts for it.
    """
    blown = [(epoch, name, value) for name, curve in curves.items() for epoch, value in curve.items()]
    blown = sorted(entry for entry in blown if not math.isfinite(entry[2]))
    if blown:
        epoch, name, value = blown[0]
        said = f"{name} became {value} at epoch {epoch}"
        finite = [(e, v) for e, v in curves[name].items() if e < epoch]
        return f"{said} (last finite {finite[-1][1]:.5g} at epoch {finite[-1][0]})" if finite else said
    train = curves.get("train/loss") or {}
    if finished and len(train) > 1:
        first, last = min(train), max(train)
        if train[last] > train[first]:
            return f"train/loss rose from {train[first]:.5g} at epoch {first} to {train[last]:.5g} at epoch {last}"
    return None


def before_any_step(train: Curve, steps_per_epoch: int) -> str | None:
    """What to look at when the training loss was not a number from the start, before any step; or None.

    With one step an epoch, the loss logged for epoch 1 is that of the initial weights: no learning rate is to blame.
    """
    if steps_per_epoch != 1 or 1 not in train or math.isfinite(train[1]):
        return None
    return (
        "It was not a number before the first step, so no learning rate can help: look at the net's forward in "
        "training mode, its initial weights and the loss."
    )


def overfitting(train: Curve, val: Curve, baseline: float) -> dict[str, Any] | None:
    """Figure 5.14 B in numbers, or None: validation 10 % above its minimum while training kept falling below it.

    Only once the model had fitted the training rows, better than `baseline` (the best straight line's training
    loss): a model still on its way can pass close to two validation readings by chance early on, and then move
    away from them as it learns.
    """
    if not val or not train or not train[max(train)] < baseline:
        return None
    best = min(val, key=val.get)
    last = max(val)
    if best not in train or last not in train:
        return None
    rose = val[last] > OVERFIT_RISE * val[best]
    fell = train[last] < train[best]
    fitted = train[best] <= FITTED * train[last]
    if rose and fell and fitted:
        return {"since_epoch": best, "val/loss": [val[best], val[last]], "train/loss": [train[best], train[last]]}
    return None


def not_converged(train: Curve, train_loss: float, optimum_loss: float | None, baseline: float | None) -> str | None:
    """How far a run that ended normally was from done, or None if it was done.

    With a closed-form optimum (a net linear in its parameters), its training loss against the optimum's;
    otherwise against `baseline`, the best straight line's (a net that cannot beat a line has not learned), and how
    much the training loss still fell over the last tenth of the run. A penalised loss (weight decay) has neither for
    reference (`optimum_loss` and `baseline` None): its trend alone.
    """
    if optimum_loss is not None:
        if train_loss > (1 + CONVERGED_GAP) * optimum_loss + 1e-12:
            times = train_loss / optimum_loss if optimum_loss > 0 else math.inf
            return f"train loss {train_loss:.4g} is {times:.3g}x the optimum's {optimum_loss:.4g}"
        return None
    if baseline is not None and train_loss > (1 + CONVERGED_GAP) * baseline:
        return f"train loss {train_loss:.4g} is above the best straight line's {baseline:.4g}"
    if len(train) < 2:
        return None
    last = max(train)
    window = max(10, len(train) // 10)
    earlier = max(e for e in train if e <= max(min(train), last - window))
    drop = 1 - train[last] / train[earlier] if train[earlier] > 0 else 0.0
    if drop > STILL_FALLING:
        return f"train/loss still fell {100 * drop:.2g} % over the last {last - earlier} epochs, to {train[last]:.4g}"
    return None


def valley(condition_number: float) -> str:
    """How the loss's bowl looks to gradient descent: `valley 33599× steeper one way than the other`."""
    if condition_number < 2:
        return "a round bowl, as steep every way"
    return f"valley {condition_number:.5g}× steeper one way than the other"


TINIEST_LR = 1e-20
"""A learning rate below this moves float32 weights of order 1 not at all (their spacing is about 1e-7)."""


def cure(
    optimizer: str,
    lr: float,
    normalize: str,
    stable_lr: float | None = None,
    condition_number: float | None = None,
    suggested_lr: float | None = None,
) -> str:
    """What to change when the loss blows up: the chapter's three cures, minus those already taken.

    Where the learning rate's limit is known (`stable_lr`, 2/λ_max), the first cure is a rate below it.
    """
    if stable_lr is not None and lr >= stable_lr and stable_lr < TINIEST_LR:  # no step float32 takes is that small
        cures = [f"the limit 2/λ_max = {stable_lr:.4g} is below any useful learning rate: reshape the net's inputs"]
    elif stable_lr is not None and lr >= stable_lr:
        cures = [
            f"lower the learning rate below its limit 2/λ_max = {stable_lr:.4g} (--model.optimizer.lr {suggested_lr:g})"
        ]
    else:
        cures = [f"lower the learning rate (--model.optimizer.lr {lr / 100:g})"]
    if normalize == "none":
        cures.append("normalise the input (--model.normalize standardize)")
    if optimizer != "Adam":
        cures.append("use Adam (--model.optimizer Adam --model.optimizer.lr 0.1)")
    listed = ", ".join(cures[:-1]) + (" or " if len(cures) > 1 else "") + cures[-1]
    why = f" ({valley(condition_number)})" if condition_number is not None else ""
    return f"The steps of {optimizer} with lr {lr:g} overshoot the minimum{why}: {listed}."


FAR_BELOW = 100
"""A rate this many times below its limit moves the weights too little for more epochs to make up for it."""


def epochs_needed(lr: float, stable_lr: float, condition_number: float, gap: float) -> float | None:
    """About how many more epochs plain gradient descent needs to come within `CONVERGED_GAP` of the optimum.

    Along the valley's flattest direction, curvature `λ_min = λ_max / condition_number` with `λ_max = 2 / stable_lr`,
    each step shrinks the distance to the minimum by `1 - lr·λ_min`, and the loss's excess over the optimum by its
    square. `gap` is that excess now, relative to the optimum's loss. None where the estimate does not apply.
    """
    shrink = lr * 2 / stable_lr / condition_number
    if not 0 < shrink < 1 or not gap > CONVERGED_GAP:
        return None
    return math.log(gap / CONVERGED_GAP) / (-2 * math.log1p(-shrink))


def more_training(
    stopped: str,
    patience: int,
    max_epochs: int,
    optimizer: str,
    lr: float,
    normalize: str,
    stable_lr: float | None = None,
    suggested_lr: float | None = None,
    condition_number: float | None = None,
    gap: float | None = None,
    epochs: int | None = None,
) -> str:
    """What to change when a run ended before it was done: a far too small rate first, where its limit is known.

    Where the limit and the valley's shape are known (plain SGD on a net linear in its parameters), more epochs are
    advised only if about ten times those run so far would do; otherwise what makes the valley rounder or the steps
    longer.
    """
    if stable_lr is not None and suggested_lr is not None and lr * FAR_BELOW < stable_lr:
        return (
            f"lr {lr:g} is {stable_lr / lr:.3g}x below its limit 2/λ_max = {stable_lr:.4g}, so each step barely moves "
            f"the weights: raise it (--model.optimizer.lr {suggested_lr:g}), not the epochs"
        )
    needed = None
    if stable_lr is not None and condition_number is not None and gap is not None and epochs:
        needed = epochs_needed(lr, stable_lr, condition_number, gap)
    if needed is not None and needed > 10 * epochs:
        cures = ["normalise the input (--model.normalize standardize)"] if normalize == "none" else []
        if suggested_lr is not None and lr < suggested_lr / 2:
            cures.append(f"raise the rate toward its limit (--model.optimizer.lr {suggested_lr:g})")
        cures.append("use Adam (--model.optimizer Adam --model.optimizer.lr 0.1)")
        return (
            f"at lr {lr:g}, SGD needs about {needed:.2g} more epochs along the valley's flat direction "
            f"({valley(condition_number)}): {', '.join(cures[:-1])}{' or ' if len(cures) > 1 else ''}{cures[-1]}, "
            "not more epochs"
        )
    if stopped.startswith("early stopping"):
        advice = f"early stopping ended it too soon: give it more patience (--early_stopping.patience {10 * patience})"
    elif stopped.startswith("max_time"):
        advice = "train longer (a longer --trainer.max_time)"
    elif needed is not None:
        advice = f"train longer (--trainer.max_epochs {round_up(epochs + needed)})"
    else:
        advice = f"train longer (--trainer.max_epochs {10 * max_epochs})"
    if normalize == "none" and optimizer != "Adam":
        advice += ", or normalise the input (--model.normalize standardize): one learning rate then suits every weight"
    return advice


def round_up(epochs: float) -> int:
    """Epochs rounded up to two significant digits: 1234.5 -> 1300."""
    unit = 10 ** max(0, math.floor(math.log10(max(epochs, 1))) - 1)
    return math.ceil(epochs / unit) * unit
