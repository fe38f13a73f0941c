"""Where a run's logs go, `lightning_logs/<name>/version_N`, and what TensorBoard's HParams tab compares runs by."""

from __future__ import annotations

import errno
import fcntl
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard.summary import hparams

from thermometer.errors import UsageError

FLUSH_SECONDS = 5
"""How often the events reach the disk while a run trains (and TensorBoard's charts move)."""


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
            flat[key] = class_name(value)
            flat.update(choices({f"{key}.{k}": v for k, v in dict(value.get("init_args") or {}).items()}))
        elif isinstance(value, bool):
            flat[key] = str(value).lower()
        elif isinstance(value, int | float | str):
            flat[key] = value
        elif value is None:
            flat[key] = "null"
        elif isinstance(value, list | tuple):  # classes by their names: metrics, [MeanAbsolutePercentageError]
            named = (class_name(v) if isinstance(v, Mapping) and "class_path" in v else str(v) for v in value)
            flat[key] = ", ".join(named)
        else:
            flat[key] = str(value)
    return flat


def class_name(value: Mapping[str, Any]) -> str:
    """`{"class_path": "torch.optim.SGD", ...}` -> `SGD`."""
    return str(value["class_path"]).rsplit(".", 1)[-1]


class RunLogger(TensorBoardLogger):
    """Lightning's `TensorBoardLogger`, claiming its `version_N` directory by creating it, and writing hparams lean.

    Lightning picks the next version by listing the directory: two runs started at the same moment would pick the
    same number, and the second abort on the first's `config.yaml`. `os.mkdir` succeeds for exactly one of them; the
    others move on to the next number. The directory is claimed when Lightning first asks for it (as `fit` sets up),
    by process 0; the others are told its directory by Lightning.

    TensorBoard's step is the epoch, counted from 1 as the book counts, whatever the batches: Lightning gives each
    epoch's numbers with the epoch they belong to. The numbers Lightning gives at once go into one event, not one
    event each (each costs a tenth of a millisecond, as much as an epoch's step on eleven readings). The events are
    flushed every few seconds and with each `last.ckpt` (`flush`), not after each epoch's numbers as Lightning's
    logger does (a write to disk each time).

    The hyperparameters go to the HParams tab as each run's session alone: no experiment summary (which each run
    would write for itself, and TensorBoard would take the first one found for all runs, ticking its first columns
    whether they differ or not), and no metric scalars of their own. TensorBoard then works out the experiment
    from every run: it ticks the choices that differ between runs, and its metrics are the runs' own curves. A
    resume writes none: the run's session is its first start's, as its `config.yaml` and `hparams.yaml` are.

    Args:
        save_dir: where the runs' names are, `lightning_logs`.
        name: the run's name, `05_split`.
        version: a run's existing directory, `version_3`, to continue in (a resume); by default the next free one.

    """

    def __init__(self, save_dir: str | Path, name: str, version: str | None = None) -> None:
        super().__init__(save_dir, name, version=version, default_hp_metric=False, flush_secs=FLUSH_SECONDS)
        self.claimed = version
        self.resumed = version is not None
        self.lock = None
        self.saved = False

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)  # the epoch, from 0, that Lightning adds to an epoch's numbers
        step = int(epoch) + 1 if epoch is not None else step
        if any(isinstance(value, Mapping) for value in metrics.values()):  # add_scalars' own runs
            super().log_metrics(metrics, step)
        elif metrics:
            values = [Summary.Value(tag=name, simple_value=float(number)) for name, number in metrics.items()]
            self.experiment.file_writer.add_summary(Summary(value=values), step)

    @rank_zero_only
    def save(self) -> None:
        # Lightning calls this after each epoch's numbers: hparams.yaml once, and the events flush themselves.
        if not self.saved:
            super().save()
            self.saved = True

    @property
    def version(self) -> str:
        if self.claimed is None:
            self.claimed = self.claim_next() if rank_zero_only.rank == 0 else "version_0"
        return self.claimed

    def claim_next(self) -> str:
        """Create the next free `version_N` and hold it: the name of the run's directory."""
        root = Path(self.root_dir)
        taken = [int(m[1]) for p in root.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))]
        number = max(taken, default=-1) + 1
        while True:
            try:
                root.mkdir(parents=True, exist_ok=True)
                (root / f"version_{number}").mkdir()
            except FileExistsError:
                if not root.is_dir():
                    raise self.unwritable(FileExistsError(errno.EEXIST, "a file is in the way")) from None
                number += 1
                continue
            except OSError as error:  # not a directory, read-only, no space, a name too long
                raise self.unwritable(error) from None
            self.claim(root / f"version_{number}")
            return f"version_{number}"

    def unwritable(self, error: OSError) -> UsageError:
        """The message for a run directory that cannot be made."""
        return UsageError(
            f"{self.root_dir}: cannot create the run's directory there ({error.strerror.lower()}); run from a "
            "directory you can write to, or give --trainer.default_root_dir."
        )

    def claim(self, run_dir: str | Path | None = None) -> None:
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
    def flush(self) -> None:
        """The events written so far, onto the disk."""
        self.experiment.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self.lock is not None:
            self.lock.close()  # the run is over: another process may resume it
            self.lock = None

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: Any = None) -> None:
        if self.resumed:  # Lightning logs them at every start of `fit`
            return
        super().log_hyperparams(params, metrics)  # hparams.yaml
        _, session_start, _ = hparams(choices(self.hparams), {})
        self.experiment.file_writer.add_summary(session_start)
