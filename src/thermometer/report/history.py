"""What happened each epoch: the losses, for the diagnoses and the summary, and the parameters, for the landscape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOSSES = ("train/loss", "val/loss")


class History:
    """Each epoch's `train/loss` and `val/loss` by epoch (counted from 1), and the path of a line's parameters.

    Kept in `last.ckpt` (see `Report.state_dict`), so a resumed run reports its whole history.
    """

    def __init__(self) -> None:
        self.losses: dict[str, dict[int, float]] = {name: {} for name in LOSSES}
        self.path: list[tuple[float, ...]] = []
        """The trained weight and bias after each epoch, from the start: the optimizer's walk over the landscape."""

    def record(self, epoch: int, logged: Mapping[str, Any]) -> None:
        """The epoch's losses, as the system logged them."""
        for name in LOSSES:
            if name in logged:
                self.losses[name][epoch] = float(logged[name])

    @property
    def train(self) -> dict[int, float]:
        return self.losses["train/loss"]

    @property
    def val(self) -> dict[int, float]:
        return self.losses["val/loss"]

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses, "path": self.path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.losses, self.path = state_dict["losses"], [tuple(p) for p in state_dict.get("path", [])]
