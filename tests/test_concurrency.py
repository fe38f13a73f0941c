"""Runs started at the same moment in the same directory each get their own run directory."""

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.loggers import TensorBoardLogger

from thermometer.cli import main
from thermometer.logger import RunLogger


def test_two_loggers_choosing_at_once_claim_different_versions(tmp_path):
    # Lightning's own logger: both list an empty directory and choose version 0.
    assert TensorBoardLogger(tmp_path).version == TensorBoardLogger(tmp_path).version == 0
    first, second = RunLogger(tmp_path / "claimed"), RunLogger(tmp_path / "claimed")
    assert (first.version, second.version) == (0, 1)
    assert (tmp_path / "claimed" / "lightning_logs" / "version_1").is_dir()  # save_dir/name/version_N
    first.finalize("success"), second.finalize("success")  # each held its directory until its run ended


def train_py(n: int, args: list[str]) -> None:
    """In a process of its own: what `python scripts/train.py args` runs, its console in console/<n>.out and .err."""
    for fd, stream in ((1, "out"), (2, "err")):
        os.dup2(os.open(f"console/{n}.{stream}", os.O_WRONLY | os.O_CREAT, 0o644), fd)
    sys.argv = ["train.py", *args]
    main()


def test_eight_runs_started_together_all_complete_in_their_own_directories(tmp_path):
    # Eight processes forked at one moment from one that has imported Lightning (this file, run as a script
    # below): the race of eight `python scripts/train.py` started together, tighter (no seconds of imports spread
    # their starts), for the cost of one import.
    command = [sys.executable, __file__, "8", "--trainer.max_epochs", "3"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    errors = [(tmp_path / "console" / f"{n}.err").read_text()[-500:] for n in range(8)]
    assert json.loads(done.stdout) == [0] * 8, errors  # each process's exit status
    run_dirs = sorted((tmp_path / "lightning_logs" / "default").iterdir())
    assert [d.name for d in run_dirs] == [f"version_{n}" for n in range(8)]
    for run_dir in run_dirs:
        assert (run_dir / "metrics.json").is_file() and (run_dir / "config.yaml").is_file()
    lines = [line for n in range(8) for line in (tmp_path / "console" / f"{n}.out").read_text().splitlines()]
    printed = sorted(line.split()[1] for line in lines if line.startswith("Run:"))
    assert printed == [f"lightning_logs/default/version_{n}" for n in range(8)]  # each run reports its own directory


if __name__ == "__main__":  # python tests/test_concurrency.py N ARGS...: N runs forked together, their exit statuses
    Path("console").mkdir()
    fork = multiprocessing.get_context("fork")  # safe: this process has only imported modules
    runs = [fork.Process(target=train_py, args=(n, sys.argv[2:])) for n in range(int(sys.argv[1]))]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    print(json.dumps([run.exitcode for run in runs]))
