"""Shared fixtures: every CLI run happens in its own tmp_path, in-process, without a progress bar."""

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from thermometer.cli import main

# The book's eleven readings (reference.md), typed here so tests do not trust the bundled CSV blindly.
T_C = torch.tensor([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0])
T_U = torch.tensor([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])
BOOK_TRAIN_ROWS = [9, 6, 5, 8, 4, 7, 0, 1, 3]
BOOK_VAL_ROWS = [2, 10]


class Run:
    """A finished run directory: `lightning_logs/version_N`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`cli("--model.degree", "2")` runs `python scripts/train.py ...` in tmp_path and returns the newest run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])

    def run(*args: str) -> Run:
        main([*args, "--trainer.enable_progress_bar=false"])
        runs = sorted((tmp_path / "lightning_logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
        return Run(runs[-1])

    return run
