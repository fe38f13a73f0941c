"""Shared fixtures: every CLI run happens in its own tmp_path, in-process, without a progress bar."""

import fcntl
import hashlib
import json
import os
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
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this session sees (the workers' temporary directories' parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def train_once(shared: Path, *args: str) -> Path:
    """`python scripts/train.py ...` in `shared`, trained by the first worker to ask, the others waiting: its run."""
    directory = shared / f"run-{hashlib.sha256(repr(args).encode()).hexdigest()[:16]}"
    with open(f"{directory}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        finished = sorted(run for run in run_dirs(directory) if (run / "metrics.json").is_file())
        if finished:
            return finished[0]
        directory.mkdir(exist_ok=True)
        return train_in(directory, *args)


@pytest.fixture(scope="session")
def finished_run(shared: Path) -> Callable[..., Path]:
    """`finished_run("--trainer.max_epochs", "300")`: that run, trained once a session, for tests that only read it."""
    return lambda *args: train_once(shared, *args)


@pytest.fixture(scope="session")
def default_run(finished_run: Callable[..., Path]) -> Path:
    """`python scripts/train.py`, once, for the tests that only read what it wrote: its run directory."""
    return finished_run()
