"""Several processes (DDP on the CPU): one run directory, one summary, the same optimum as one process."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import train_script
from thermometer.data import TemperatureDataModule
from thermometer.linear import best_line

ROOT = Path(__file__).parents[1]
DDP = ["--config", str(ROOT / "configs" / "presets" / "ddp.yaml")]


def train(args: list[str], cwd: Path) -> tuple[dict, str, str]:
    """`python scripts/train.py --config configs/presets/ddp.yaml ...`: its metrics.json, stdout and stderr."""
    done = train_script([*DDP, *args], cwd)  # process 0, forked; Lightning starts process 1 as a script
    stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr[-2000:]
    runs = list((cwd / "lightning_logs").glob("*/*"))
    assert [run.relative_to(cwd).as_posix() for run in runs] == ["lightning_logs/ddp/version_0"]  # one for both
    assert (runs[0] / "config.yaml").is_file() and (runs[0] / "checkpoints" / "best.ckpt").is_file()
    return json.loads((runs[0] / "metrics.json").read_text()), stdout, stderr


def test_two_processes_on_the_book_readings_learn_what_one_does(tmp_path, default_run):
    metrics, stdout, stderr = train([], tmp_path)
    assert stdout.count("Learned:") == 1  # rank 0 alone reports
    assert "Starting with 2 processes" in stderr  # Lightning's banner
    assert "Warning" not in stderr and "[rank: 1]" not in stderr, stderr
    # Nine training rows are one batch, which both processes take: the averaged gradient is the full batch's.
    alone = json.loads((default_run / "metrics.json").read_text())
    for key in ("bias", "train_loss", "val_loss", "epochs"):
        assert metrics[key] == pytest.approx(alone[key], abs=1e-6)
    assert metrics["weight"] == pytest.approx(alone["weight"], abs=1e-6)


def test_two_processes_share_the_batches_of_a_larger_csv_and_reach_the_optimum(tmp_path):
    rng = np.random.default_rng(0)
    t_u = rng.uniform(-20.0, 110.0, 20_000)
    t_c = (t_u - 32.0) * 5.0 / 9.0 + rng.normal(0.0, 0.5, t_u.size)
    pd.DataFrame({"t_u": t_u, "t_c": t_c}).to_csv(tmp_path / "sensor.csv", index=False)
    args = ["--data.csv_path", "sensor.csv", "--data.batch_size", "1000", "--trainer.max_epochs", "30"]
    metrics, _, _ = train([*args, "--early_stopping.patience", "30"], tmp_path)
    data = TemperatureDataModule(csv_path=tmp_path / "sensor.csv")
    data.load()
    weight, bias = best_line(data.train_inputs, data.train_targets)
    # The README's tolerance for DDP: mini-batch SGD ends within 1e-3 of the optimum's weight, 0.05 of its bias.
    assert metrics["weight"][0] == pytest.approx(weight.item(), abs=1e-3)
    assert metrics["bias"] == pytest.approx(bias, abs=0.05)
    assert metrics["train_loss"] == pytest.approx(metrics["closed_form"]["train_loss"], rel=1e-3)
    assert metrics["epochs"] == 30
