"""What is saved when: the best weights and the last state, written every few seconds, and how patience resumes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from thermometer.run.logger import RunLogger


class Patience(EarlyStopping):
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


def moved(state_dict: dict[str, Any], dirpath: str | None) -> dict[str, Any]:
    """A `ModelCheckpoint`'s saved state, its paths in `dirpath` if the run's directory was moved or copied there.

    Lightning keeps the scores only if the directory is the one saved (else it warns and starts the best over, and
    writes `best-v1.ckpt` beside the run's own `best.ckpt`). The run is the same wherever its directory now is.
    """
    before = state_dict.get("dirpath")
    if not before or not dirpath or before == dirpath:
        return state_dict

    def here(path: Any) -> Any:
        return str(Path(dirpath) / Path(path).name) if isinstance(path, str) and path.startswith(before) else path

    state = {key: here(value) for key, value in state_dict.items()}
    state["best_k_models"] = {here(path): score for path, score in state_dict.get("best_k_models", {}).items()}
    state["dirpath"] = dirpath
    return state


class BestCheckpoint(ModelCheckpoint):
    """Lightning's `ModelCheckpoint`, with the seconds its best weights may wait in memory before they are written.

    The waiting is done by the run's checkpoint writer (`AtomicCheckpointIO`), which the CLI gives these seconds,
    as it gives them to `last.ckpt`'s `LastCheckpoint`: `--checkpoint.write_every` sets both.

    Args:
        *args: `ModelCheckpoint`'s arguments.
        write_every: seconds between writes of a new best; 0 writes each improvement at once.
        **kwargs: `ModelCheckpoint`'s keyword arguments.

    """

    def __init__(self, *args: Any, write_every: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_every = write_every

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(moved(state_dict, self.dirpath))


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt`, written at the end of an epoch at most every `write_every` seconds, and at the end of training.

    A `kill -9` then loses at most those seconds; an epoch boundary is where a resumed run continues exactly. A
    `ModelCheckpoint`, so that Lightning calls it after every other callback, whose state it saves.

    Args:
        write_every: seconds between writes; `--checkpoint.write_every` sets it with the best checkpoint's.

    """

    def __init__(self, write_every: float = 5.0) -> None:
        super().__init__(filename="last", save_top_k=0)
        self.write_every = write_every
        self.written_at = time.monotonic()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(moved(state_dict, self.dirpath))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.written_at = time.monotonic()  # seconds of training, not of start-up, before the first write

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every process must take part in the write: rank 0's clock decides for all.
        if trainer.strategy.broadcast(time.monotonic() - self.written_at >= self.write_every):
            self.write(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # only at the end of the epoch, after every callback has seen it

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer)

    def write(self, trainer: L.Trainer) -> None:
        """Everything a resume needs, into `last.ckpt`."""
        self.last_model_path = str(Path(self.dirpath) / "last.ckpt")
        trainer.save_checkpoint(self.last_model_path, weights_only=False)
        for logger in trainer.loggers:
            if isinstance(logger, RunLogger):
                logger.flush()  # the curves on disk reach at least as far as the checkpoint
        self.written_at = time.monotonic()
