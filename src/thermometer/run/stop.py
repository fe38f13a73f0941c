"""Ctrl-C or SIGTERM: `fit` ends at the end of the epoch, with a checkpoint to resume from; an evaluation at once."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from thermometer.report.console import resume_command


class GracefulStop(L.Callback):
    """Ctrl-C (SIGINT) or SIGTERM during `fit` ends training at the end of the current epoch, as a finished run.

    From the moment the run directory exists (`setup`), until training has ended: `last.ckpt` is then written at an
    epoch boundary, from which `fit --ckpt_path` continues exactly; the summary says the run was interrupted and
    how to resume it, and the exit status is 128 + the signal's number. A second Ctrl-C stops at once (exit 130).
    A signal after the last epoch changes nothing: the run is finished.

    Lightning installs a SIGTERM handler of its own just before training, which would end the run with a bare
    `SystemExit` (status 0) and nothing saved; this callback puts its own back before the sanity check and before
    the first epoch, and takes over a SIGTERM Lightning noted in between.

    `validate`, `test` and `predict` keep nothing until their loop has run: from `at_once` until then, a signal
    stops them at once (as Ctrl-C, a `KeyboardInterrupt`), and nothing is written. After the loop a signal changes
    nothing: `predictions.csv` is written whole, and the command ends as if none had come.
    """

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self.interrupted: signal.Signals | None = None  # the signal that ended training before its end
        self.twice = False
        self.say = True
        self.training = False
        self.evaluating = False
        self.run_dir = Path()
        self.previous: dict[int, Any] = {}

    def at_once(self) -> None:
        """From now until `fit` sets up or an evaluation's loop has run, Ctrl-C or SIGTERM stops the command at once."""
        self.signal, self.evaluating = None, True
        self.hold()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.say = trainer.is_global_zero  # Ctrl-C reaches every process; one of them answers
        if stage != "fit":
            return
        self.signal, self.interrupted, self.twice, self.training, self.evaluating = None, None, False, True, False
        self.run_dir = Path(trainer.log_dir)
        self.hold()

    def hold(self) -> None:
        """Keep the handlers in place now, to put back when done, and put this callback's in their place."""
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self.previous = self.previous or {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            self.listen()

    def listen(self) -> None:
        if self.previous:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self.stop)

    def release(self) -> None:
        """Put back the handlers that were in place before."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.listen()  # Lightning's SIGTERM handler has just been installed

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.listen()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.evaluating:  # Lightning's SIGTERM handler has just been installed
            self.listen()

    on_test_start = on_predict_start = on_validation_start

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.evaluating = False

    on_test_end = on_validation_end
    # Before PredictionWriter's: once every prediction is made, they are written whatever comes.
    on_predict_epoch_end = on_validation_end

    def stop(self, signum: int, frame: Any) -> None:
        if self.evaluating:  # nothing is kept until the loop has run: stop now, as Ctrl-C does
            self.signal = signal.Signals(signum)
            raise KeyboardInterrupt
        if not self.training:  # after the last epoch: the run is finished, whatever arrives now
            return
        if self.signal is not None:  # asked twice: stop now
            self.twice = True
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)
        if self.say:
            again = "Ctrl-C" if self.signal == signal.SIGINT else self.signal.name
            notice = f"{self.signal.name}: stopping at the end of this epoch ({again} again to stop at once)"
            print(f"\n{notice}", file=sys.stderr)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Here, not in the handler: a stop requested between epochs would leave an epoch without its step.
        if trainer.received_sigterm:  # noted by Lightning's handler in the moment before ours was back
            self.signal = self.signal or signal.SIGTERM
            # Ours to handle, at this epoch's end, with a checkpoint: Lightning would raise a bare SystemExit. The
            # trainer's flag is read-only, and no public API tells Lightning that a callback handles SIGTERM.
            trainer._signal_connector.received_sigterm = False
        # With several processes, a signal to any one of them (`kill` reaches one) stops them all.
        if trainer.world_size > 1:
            asked = trainer.strategy.reduce(torch.tensor(self.signal or 0), reduce_op="max")
            self.signal = signal.Signals(int(asked)) if asked else None
        if self.signal is not None:
            self.interrupted = self.signal
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.training = False

    def stopped_at_once(self, program: str, options: Sequence[str] = ()) -> str:
        """What a second Ctrl-C leaves: the last periodic `last.ckpt` to resume from, if one was written."""
        last = self.run_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            return "Stopped at once, before the first checkpoint: nothing to resume."
        command = resume_command(self.run_dir, last, options, program)
        return f"Stopped at once. Resume:  {command}   (from the last periodic checkpoint)"

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.training = self.evaluating = False
        self.release()
