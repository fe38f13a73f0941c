"""Shared fixtures: every CLI run happens in its own tmp_path, in-process, without a progress bar."""

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from thermometer.cli import main


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


def train_in(directory: Path, *args: str) -> Path:
    """`python scripts/train.py ...` run in `directory`, for a fixture shared by several tests; its first run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.setattr(sys, "argv", ["train.py"])
        main([*args, "--trainer.enable_progress_bar=false"])
    return directory / "lightning_logs" / "version_0"


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python scripts/train.py`, once, for the tests that only read what it wrote: its run directory."""
    return train_in(tmp_path_factory.mktemp("default"))
