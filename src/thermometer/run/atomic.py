"""Files written whole or not at all: a crash, a kill or a full disk never leaves a half-written one.

Each is written to a temporary file in the same directory (the same filesystem, so the last step is a rename, not
a copy), flushed to disk, then renamed over the target, or linked to a new name that must not exist yet.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

_UMASK = os.umask(0o022)
os.umask(_UMASK)
MODE = 0o666 & ~_UMASK
"""The mode a file would be created with; temporary files start private (0600)."""


@contextmanager
def staged(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A temporary file beside `path`, open for writing; removed unless the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        mode, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as file:
        try:
            yield file
            file.flush()
            os.fsync(file.fileno())
            os.chmod(file.name, MODE)
        except BaseException:
            file.close()
            Path(file.name).unlink(missing_ok=True)
            raise


def replace(path: Path, write: Any, mode: str = "w") -> None:
    """`write(file)` into a staged file, then rename it over `path`."""
    with staged(path, mode) as file:
        write(file)
    try:
        os.replace(file.name, path)
    except BaseException:
        Path(file.name).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """`path` holds `text`, whole, or keeps what it held."""
    replace(path, lambda file: file.write(text))


def create(path: Path, write: Any) -> None:
    """`write(file)` into a new file at `path`; `FileExistsError` if one is there, which is never overwritten."""
    with staged(path) as file:
        write(file)
    try:
        os.link(file.name, path)  # fails if `path` exists, even when another process creates it at the same moment
    finally:
        Path(file.name).unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each `.ckpt` whole or not at all, and the best weights every few seconds.

    On eleven readings an epoch takes about a millisecond and the loss improves nearly every epoch, so Lightning's
    `ModelCheckpoint` saves the best weights nearly every epoch; a write with its fsync takes 3 ms. A weights-only
    checkpoint (the best so far) is therefore held in memory, its weights copied, and written once `write_every`
    seconds have passed since its file was last written, or with the next full checkpoint (`last.ckpt`), or when the
    run ends (`teardown`, also after an error). A `kill -9` loses at most those seconds of it.

    Args:
        write_every: seconds a weights-only checkpoint may wait in memory; 0 writes each at once.

    """

    def __init__(self, write_every: float = 0.0) -> None:
        super().__init__()
        self.write_every = write_every
        self.held: dict[Path, dict[str, Any]] = {}
        self.written_at: dict[Path, float] = {}
        self.started = time.monotonic()

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        waited = time.monotonic() - self.written_at.get(path, self.started)
        if "optimizer_states" not in checkpoint and waited < self.write_every:
            # The weights are the live ones, which the next step changes; the rest was made for this checkpoint.
            weights = {name: tensor.clone() for name, tensor in checkpoint["state_dict"].items()}
            self.held[path] = {**checkpoint, "state_dict": weights}
            return
        self.held.pop(path, None)
        self.flush()
        self.write(path, checkpoint)

    def write(self, path: Path, checkpoint: dict[str, Any]) -> None:
        """A checkpoint into `path`, whole or not at all."""
        replace(path, lambda file: torch.save(checkpoint, file), mode="wb")
        self.written_at[path] = time.monotonic()

    def flush(self) -> None:
        """Write every checkpoint held in memory."""
        while self.held:
            self.write(*self.held.popitem())

    def remove_checkpoint(self, path: Any) -> None:
        self.held.pop(Path(path), None)
        super().remove_checkpoint(path)

    def teardown(self) -> None:
        self.flush()
