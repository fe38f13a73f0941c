"""Shared fixtures: every CLI run happens in its own tmp_path, in-process, without a progress bar."""

import fcntl
import gc
import hashlib
import importlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_sessionfinish() -> None:
    # A worker ends after this: its objects go back to the OS with it. Left to the interpreter's last garbage
    # collection, the hundreds of thousands that torch and Lightning made would take a second or more.
    gc.freeze()


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
        from thermometer.cli import main  # in the workers only: xdist's controller process runs no test

        before = run_dirs(tmp_path)
        main([*args, "--trainer.enable_progress_bar=false"])
        [made] = run_dirs(tmp_path) - before
        return Run(made)

    return run


def train_in(directory: Path, *args: str) -> Path:
    """`python scripts/train.py ...` run in `directory`, for a fixture shared by several tests: its run directory."""
    from thermometer.cli import main

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


# --- Scripts in processes of their own, for the tests that signal or kill them. Each is forked from a server that
# has imported the project once (multiprocessing's forkserver): a `python scripts/train.py` costs seconds of
# imports, which would be most of such a test. The forked process runs what the script runs, from `main` on.

SERVER = multiprocessing.get_context("forkserver")
SERVER.set_forkserver_preload(["thermometer.cli", "thermometer.sweep"])


def _script(entry: str, argv: list[str], cwd: str, out: str, err: str) -> None:
    """In the forked process: `python scripts/<x>.py args` in `cwd`, its console into the files `out` and `err`."""
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a script (the server ignores Ctrl-C)
    Path(out).with_name("ready").touch()  # from here on, the process is the script: a signal reaches it
    sys.argv = argv
    module, function = entry.split(":")
    getattr(importlib.import_module(module), function)()


class Script:
    """A script run in a process of its own, as `subprocess.Popen` would run it (the parts the tests use)."""

    def __init__(self, entry: str, script: str, args: list[str], cwd: Path) -> None:
        console = Path(tempfile.mkdtemp(prefix="console-"))
        self.out, self.err = console / "out", console / "err"
        argv = [str(Path(__file__).parents[1] / "scripts" / script), *args]
        self.process = SERVER.Process(target=_script, args=(entry, argv, str(cwd), str(self.out), str(self.err)))
        self.process.start()
        self.pid = self.process.pid
        # Signals are sent to the script, not to the fork still becoming it (under load that takes a while).
        deadline = time.monotonic() + 120
        while not (console / "ready").exists() and self.process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.005)

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(str(self.process), timeout)
        return self.out.read_text(), self.err.read_text()


def train_script(args: list[str], cwd: Path) -> Script:
    """`python scripts/train.py args` in `cwd`, started now."""
    return Script("thermometer.cli:main", "train.py", args, cwd)


def sweep_script(args: list[str], cwd: Path) -> Script:
    """`python scripts/sweep.py args` in `cwd`, started now."""
    return Script("thermometer.sweep:main", "sweep.py", args, cwd)
