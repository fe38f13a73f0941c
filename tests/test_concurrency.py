"""Runs started at the same moment in the same directory each get their own run directory."""

from lightning.pytorch.loggers import TensorBoardLogger

from tests.conftest import train_script
from thermometer.run.logger import RunLogger


def test_two_loggers_choosing_at_once_claim_different_versions(tmp_path):
    # Lightning's own logger: both list an empty directory and choose version 0.
    assert TensorBoardLogger(tmp_path).version == TensorBoardLogger(tmp_path).version == 0
    first, second = RunLogger(tmp_path / "claimed", "lightning_logs"), RunLogger(tmp_path / "claimed", "lightning_logs")
    assert (first.version, second.version) == ("version_0", "version_1")
    assert (tmp_path / "claimed" / "lightning_logs" / "version_1").is_dir()  # save_dir/name/version_N
    first.finalize("success"), second.finalize("success")  # each held its directory until its run ended


def test_eight_runs_started_together_all_complete_in_their_own_directories(tmp_path):
    # Eight processes forked at one moment from one that has imported Lightning: the race of eight
    # `python scripts/train.py` started together, tighter (no seconds of imports spread their starts).
    runs = [train_script(["--trainer.max_epochs", "3"], tmp_path) for _ in range(8)]
    consoles = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * 8, [err[-500:] for _, err in consoles]
    run_dirs = sorted((tmp_path / "lightning_logs" / "default").iterdir())
    assert [d.name for d in run_dirs] == [f"version_{n}" for n in range(8)]
    for run_dir in run_dirs:
        assert (run_dir / "metrics.json").is_file() and (run_dir / "config.yaml").is_file()
    lines = [line for out, _ in consoles for line in out.splitlines()]
    printed = sorted(line.split()[1] for line in lines if line.startswith("Run:"))
    assert printed == [f"lightning_logs/default/version_{n}" for n in range(8)]  # each run reports its own directory
