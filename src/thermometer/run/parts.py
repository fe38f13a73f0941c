"""The callbacks that keep a run, handed to its report: why it stopped, and where its checkpoints are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from thermometer.run.stop import GracefulStop


@dataclass
class RunParts:
    """Early stopping, the best and last checkpoints, the stop signals, and callbacks that may stop a run.

    Attributes:
        stopping: early stopping, whose reason the summary gives.
        best: the best checkpoint, whose score and path it gives.
        last: the last checkpoint, to resume from.
        stop: Ctrl-C and SIGTERM.
        stoppers: other callbacks that may end a run: the user's own early stopping, or one that says why in
            `stopped_because` (a sweep's pruning).

    """

    stopping: EarlyStopping
    best: ModelCheckpoint
    last: ModelCheckpoint
    stop: GracefulStop
    stoppers: Sequence[Callback] = ()

    def early_stopping(self) -> list[EarlyStopping]:
        """The run's early stopping, then the user's own."""
        return [self.stopping, *(c for c in self.stoppers if isinstance(c, EarlyStopping))]

    def because(self) -> str | None:
        """Why one of the `stoppers` ended the run, if one did."""
        return next((c.stopped_because for c in self.stoppers if getattr(c, "stopped_because", None)), None)
