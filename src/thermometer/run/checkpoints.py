"""What is saved when, and how a run stops and resumes: the best and last checkpoints, and Ctrl-C or SIGTERM."""

from __future__ import annotations

import functools
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason


class SettledKey:
    """A callback's `state_key` worked out once: Lightning builds it from the settings at every hook it calls.

    The key names the callback's state in a checkpoint; its settings do not change once the run has begun.
    """

    @functools.cached_property
    def state_key(self) -> str:
        return super().state_key


class Patience(SettledKey, EarlyStopping):
    """Lightning's `EarlyStopping`, whose options given with a resume override the checkpoint's.

    Lightning restores the patience with the count of epochs without improvement, so `--early_stopping.patience
    100` added to a resume would change nothing, and it restores why the run last stopped, which a resumed run
    has yet to find out. The count and the best score carry on: a run that stopped early stops again at once.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience, self.stopped_epoch = patience, 0
        self.stopping_reason, self.stopping_reason_message = EarlyStoppingReason.NOT_STOPPED, None

    def _improvement_message(self, current: torch.Tensor) -> str:
        # Lightning formats this at every improvement, nearly every epoch here, for its verbose log alone: the
        # tensors' arithmetic and formatting cost more than the check itself.
        return super()._improvement_message(current) if self.verbose else "improved"


class BestCheckpoint(SettledKey, ModelCheckpoint):
    """Lightning's `ModelCheckpoint` of the best weights, holding each new best in memory, written every few seconds.

    On eleven readings an epoch takes milliseconds and the loss improves nearly every epoch, so writing, or even
    assembling, a checkpoint at each improvement would be most of a run's work. A new best costs a copy of the
    model's tensors; `best.ckpt` (the weights, hyperparameters and split at the best epoch, as `save_weights_only`
    writes) lags by at most `write_every` seconds and is written at the end of training and on an exception.
    `last.ckpt` holds everything a resumed run needs. With `save_weights_only` false or `save_top_k` other than 1,
    each improvement is written at once, as Lightning does.

    Args:
        *args: `ModelCheckpoint`'s arguments.
        write_every: seconds between writes of a new best; 0 writes each improvement at once.
        **kwargs: `ModelCheckpoint`'s keyword arguments.

    """

    def __init__(self, *args: Any, write_every: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_every = write_every
        self.pending: tuple[str, int, int, dict[str, torch.Tensor]] | None = None
        self.written_at = time.monotonic()

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if self.save_top_k != 1 or not self.write_every or not self.save_weights_only:
            super()._save_checkpoint(trainer, filepath)
            return
        weights = {name: t.detach().clone() for name, t in trainer.lightning_module.state_dict().items()}
        self.pending = (filepath, trainer.current_epoch, trainer.global_step, weights)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if time.monotonic() - self.written_at >= self.write_every:
            self.write(trainer)

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, torch.Tensor]:
        # Lightning deep-copies every logged value at each epoch to freeze the score and the name's numbers, about
        # 0.1 ms a tensor; a detached clone freezes them as well.
        candidates = {
            name: value.detach().clone() if isinstance(value, torch.Tensor) else value
            for name, value in trainer.callback_metrics.items()
        }
        epoch, step = candidates.get("epoch"), candidates.get("step")
        candidates["epoch"] = epoch.int() if isinstance(epoch, torch.Tensor) else torch.tensor(trainer.current_epoch)
        candidates["step"] = step.int() if isinstance(step, torch.Tensor) else torch.tensor(trainer.global_step)
        return candidates

    def _get_metric_interpolated_filepath_name(
        self, monitor_candidates: dict[str, torch.Tensor], trainer: L.Trainer, del_filepath: str | None = None
    ) -> str:
        # A new best replacing the last under the same name (`best.ckpt`): Lightning's answer, without asking the
        # file system at every epoch whether that file exists.
        filepath = self.format_checkpoint_name(monitor_candidates)
        if filepath == del_filepath:
            return filepath
        return super()._get_metric_interpolated_filepath_name(monitor_candidates, trainer, del_filepath)

    def write(self, trainer: L.Trainer) -> None:
        """Write the best held in memory, if any, as the checkpoint of its own epoch."""
        if self.pending is not None:
            filepath, epoch, global_step, weights = self.pending
            self.pending = None
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=True)
            checkpoint.update(epoch=epoch, global_step=global_step, state_dict=weights)
            trainer.strategy.save_checkpoint(checkpoint, filepath)
            self.written_at = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.written_at = time.monotonic()  # seconds of training, not of start-up, before the first write
        super().on_train_start(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer)
        super().on_train_end(trainer, pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.write(trainer)
        super().on_exception(trainer, pl_module, exception)


class LastCheckpoint(SettledKey, ModelCheckpoint):
    """`last.ckpt`, written at the end of an epoch at most every `write_every` seconds, and at the end of training.

    A `kill -9` then loses at most those seconds; an epoch boundary is where a resumed run continues exactly. The
    seconds are the best checkpoint's, when there is one: `--checkpoint.write_every` sets both.
    """

    def __init__(self, write_every: float = 5.0) -> None:
        super().__init__(save_top_k=0, save_last=True)
        self.write_every = write_every
        self.written_at = time.monotonic()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        best = next((c for c in trainer.callbacks if isinstance(c, BestCheckpoint)), None)
        self.write_every = best.write_every if best is not None else self.write_every
        super().setup(trainer, pl_module, stage)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.written_at = time.monotonic()  # seconds of training, not of start-up, before the first write
        super().on_train_start(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every process must take part in the write: rank 0's clock decides for all.
        if trainer.strategy.broadcast(time.monotonic() - self.written_at >= self.write_every):
            self.write_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # only at the end of the epoch, after every callback has seen it

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write_last(trainer)

    def write_last(self, trainer: L.Trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self.written_at = time.monotonic()
