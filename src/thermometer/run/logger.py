"""Where a run's logs go, `lightning_logs/<name>/version_N`, and what TensorBoard's HParams tab compares runs by."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from thermometer.errors import UsageError


def choices(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The model's and the data's arguments as TensorBoard's HParams tab takes them: one flat row of plain values.

    A class given by path and arguments, `{"class_path": "torch.optim.SGD", "init_args": {"lr": 0.2}}`, becomes
    `optimizer: SGD` and `optimizer.lr: 0.2`; lists become text, and arguments starting with `_` are Lightning's.
    """
    flat: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        if key.startswith("_"):
            continue
        if isinstance(value, Mapping) and "class_path" in value:
            flat[key] = str(value["class_path"]).rsplit(".", 1)[-1]
            flat.update(choices({f"{key}.{k}": v for k, v in dict(value.get("init_args") or {}).items()}))
        elif isinstance(value, bool):
            flat[key] = str(value).lower()
        elif isinstance(value, int | float | str):
            flat[key] = value
        elif value is None:
            flat[key] = "null"
        elif isinstance(value, list | tuple):
            flat[key] = ", ".join(map(str, value))
        else:
            flat[key] = str(value)
    return flat


class FirstEventCreates(SummaryWriter):
    """torch's `SummaryWriter`, whose events file is created by the first event written, not by the writer.

    Lightning creates the writer as `fit` sets up, before it restores a checkpoint or the data's split: a run
    refused there would leave an empty events file behind (in a resumed run's directory, one more).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.opening = True
        super().__init__(*args, **kwargs)
        self.opening = False

    def _get_file_writer(self) -> Any:
        return None if self.opening else super()._get_file_writer()


class RunLogger(TensorBoardLogger):
    """Lightning's `TensorBoardLogger`, claiming its `version_N` directory by creating it, and writing hparams lean.

    Lightning picks the next version by listing the directory: two runs started at the same moment pick the same
    number, and the second aborts on the first's `config.yaml`. `os.mkdir` succeeds for exactly one of them; the
    others move on to the next number.

    The hyperparameters go to the HParams tab as each run's session alone: no experiment summary (which each run
    would write for itself, and TensorBoard would take the first one found for all runs, ticking its first columns
    whether they differ or not), and no metric scalars of their own. TensorBoard then works out the experiment
    from every run: it ticks the choices that differ between runs, and its metrics are the runs' own curves.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[str, float] = {}
        self.step: int | None = None
        self.logged_at = 0.0

    @property
    @rank_zero_experiment
    def experiment(self) -> SummaryWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = FirstEventCreates(log_dir=self.log_dir, **self._kwargs)
        return self._experiment

    def _get_next_version(self) -> int:
        version = super()._get_next_version()
        if rank_zero_only.rank != 0:  # other processes are told rank 0's directory
            return version
        while True:
            try:
                os.makedirs(self.root_dir, exist_ok=True)
                os.mkdir(os.path.join(self.root_dir, f"version_{version}"))
            except FileExistsError:
                if not os.path.isdir(self.root_dir):
                    raise self.unwritable(FileExistsError(errno.EEXIST, "a file is in the way")) from None
                version += 1
                continue
            except OSError as error:  # not a directory, read-only, no space, a name too long
                raise self.unwritable(error) from None
            self.claim(os.path.join(self.root_dir, f"version_{version}"))
            return version

    def unwritable(self, error: OSError) -> UsageError:
        """The message for a run directory that cannot be made."""
        return UsageError(
            f"{self.root_dir}: cannot create the run's directory there ({error.strerror.lower()}); run from a "
            "directory you can write to, or give --trainer.default_root_dir."
        )

    def claim(self, run_dir: str | None = None) -> None:
        """Hold the run directory while this process lives (an advisory lock the system drops when it ends).

        A second process resuming the same run at the same time, or resuming a run still training, is refused:
        both would write the same curves and checkpoints.
        """
        if rank_zero_only.rank != 0:
            return
        path = Path(run_dir or self.log_dir) / ".lock"
        self.lock = path.open("a")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            raise UsageError(
                f"{path.parent} is in use by another process (a run training or being resumed): two at once would "
                "write the same curves. Wait for it to end."
            ) from None

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """All the numbers of one step in one event, which TensorBoard reads as the same scalars.

        Lightning's logger writes an event per number (`add_scalar`), about 50 µs each: with eight numbers an epoch
        that is more than the training step of the eleven readings. An epoch's calls (training, validation, the
        weights) are gathered and written once the next step begins, or when the run saves or ends.
        """
        if step != self.step and self.pending:
            self.write_pending()
        if not self.pending:
            self.logged_at = time.time()  # the event's time: when the step's numbers were logged, not written
        self.step = step
        self.pending.update(metrics)

    def write_pending(self) -> None:
        """The numbers gathered for the current step, as one event."""
        values = [Summary.Value(tag=name, simple_value=float(value)) for name, value in self.pending.items()]
        self.experiment._get_file_writer().add_summary(Summary(value=values), self.step, self.logged_at)
        self.pending = {}

    @rank_zero_only
    def save(self) -> None:
        if self.pending:
            self.write_pending()
        super().save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self.pending:
            self.write_pending()
        super().finalize(status)
        if getattr(self, "lock", None) is not None:
            self.lock.close()  # the run is over: another process may resume it
            self.lock = None

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: Any = None) -> None:
        super().log_hyperparams(params, metrics)  # hparams.yaml
        _, session_start, _ = hparams(choices(self.hparams), {})
        self.experiment._get_file_writer().add_summary(session_start)
