"""Shared fixtures: every CLI run happens in its own tmp_path, in-process, without a progress bar."""

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from thermometer.cli import main


class Run:
    """A finished run directory: `lightning_logs/<name>/version_N`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text())


def run_dirs(directory: Path) -> set[Path]:
    """Every run directory under `directory/lightning_logs`."""
    return set((directory / "lightning_logs").glob("*/version_*"))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`cli("--model.net", "MLP")` runs `python scripts/train.py ...` in tmp_path and returns the run it made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])

    def run(*args: str) -> Run:
        before = run_dirs(tmp_path)
        main([*args, "--trainer.enable_progress_bar=false"])
        [made] = run_dirs(tmp_path) - before
        return Run(made)

    return run


def train_in(directory: Path, *args: str) -> Path:
    """`python scripts/train.py ...` run in `directory`, for a fixture shared by several tests: its run directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.setattr(sys, "argv", ["train.py"])
        before = run_dirs(directory)
        main([*args, "--trainer.enable_progress_bar=false"])
        [made] = run_dirs(directory) - before
    return made


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python scripts/train.py`, once, for the tests that only read what it wrote: its run directory."""
    return train_in(tmp_path_factory.mktemp("default"))
