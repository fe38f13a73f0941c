"""scripts/benchmark.py end to end, CI-sized: every field of benchmark.json, and fits that reach their references.

Timings are machine-dependent and never asserted here; only that they were measured.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def numbers(section: dict, *names: str) -> None:
    for name in names:
        assert is_number(section.get(name)), f"{name}: {section.get(name)!r}"


def near_optimum(fit: dict, weight: float, bias: float) -> None:
    numbers(fit, "weight", "bias", "loss", "weight_diff", "bias_diff", "loss_gap")
    numbers(fit["optimum"], "weight", "bias", "loss")
    assert fit["reached"] is True
    assert abs(fit["weight"] - fit["optimum"]["weight"]) <= weight
    assert abs(fit["bias"] - fit["optimum"]["bias"]) <= bias


@pytest.mark.slow
def test_quick_benchmark_writes_every_field_and_its_fits_reach_the_optimum(tmp_path):
    output = tmp_path / "benchmark.json"
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick"]
    command += ["--output", str(output), "--workdir", str(tmp_path)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "Targets" in done.stdout
    assert not (tmp_path / "lightning_logs").exists()  # every run has a directory of its own
    result = json.loads(output.read_text())

    numbers(result["machine"], "cpu_count")
    for name in ("python", "torch", "lightning", "date"):
        assert result["machine"][name]
    assert result["machine"]["thermometer_source"] == str(ROOT / "src" / "thermometer")  # this checkout's code
    assert result["quick"] is True
    assert result["repeats"] == 1
    assert result["errors"] == []

    a = result["time_to_optimum"]
    numbers(a, "train_s", "plain_s", "floor_s", "ratio_floor", "ratio_plain", "weight", "bias")
    numbers(a, "weight_diff", "bias_diff")
    # The default run trains on the book's 9 training readings: its optimum is the README's.
    assert a["optimum"]["weight"] == pytest.approx(0.520504, abs=1e-5)
    assert a["optimum"]["bias"] == pytest.approx(-16.7986, abs=1e-4)
    near_optimum(a["train_fit"], 1e-4, 1e-3)
    assert (a["weight"], a["bias"]) == (a["train_fit"]["weight"], a["train_fit"]["bias"])
    # The book's loop, on all 11 readings: [5.3671, -17.3012] in t_un = 0.1 * t_u units.
    assert a["plain_fit"]["optimum"]["weight"] == pytest.approx(0.536772, abs=1e-5)
    assert a["plain_fit"]["optimum"]["bias"] == pytest.approx(-17.30479, abs=1e-4)
    assert a["plain_fit"]["weight"] == pytest.approx(0.53671, abs=1e-4)
    assert a["plain_fit"]["bias"] == pytest.approx(-17.3012, abs=1e-3)
    near_optimum(a["plain_fit"], 1e-3, 1e-2)

    b = result["per_epoch"]
    numbers(b, "lightning_ms", "plain_ms", "ratio", "bare_lightning_ms", "bare_ratio")
    near_optimum(b["lightning_fit"], 1e-4, 1e-3)
    near_optimum(b["plain_fit"], 1e-4, 1e-3)

    c = result["scale"]
    numbers(c["import_baseline"], "seconds", "peak_mb")
    assert result["rows"] == [20_000, 200_000]
    for rows in result["rows"]:
        size = c[str(rows)]
        numbers(size, "rows", "csv_mb", "generate_s")
        numbers(size["load"], "project_s", "pandas_s", "datamodule_s", "project_rows_per_s", "pandas_rows_per_s")
        numbers(size["load"], "ratio")
        numbers(size["train"], "lightning_epoch_s", "plain_epoch_s", "lightning_rows_per_s", "plain_rows_per_s")
        numbers(size["train"], "ratio", "batch_size")
        numbers(size["load_one_epoch"], "in_process_s", "process_s", "pandas_read_csv_s", "ratio", "process_ratio")
        numbers(size["memory"], "peak_mb", "data_mb", "import_baseline_mb", "limit_mb", "ratio")
        assert size["memory"]["data_mb"] == pytest.approx(rows * 2 * 4 / 2**20)
        fit = size["fit"]
        near_optimum(fit, 2e-3, 0.1)
        near_optimum(size["plain_fit"], 2e-3, 0.1)
        numbers(fit, "weight_diff_truth", "bias_diff_truth")
        # t_c = (t_u - 32) * 5/9 plus noise of sd 0.5: the data's own least squares is close to the truth.
        assert fit["optimum"]["weight"] == pytest.approx(5 / 9, abs=2e-3)
        assert fit["optimum"]["bias"] == pytest.approx(-160 / 9, abs=0.1)
        assert fit["weight"] == pytest.approx(5 / 9, abs=2e-3)
        assert fit["bias"] == pytest.approx(-160 / 9, abs=0.1)
    numbers(c["growth"], "from_s", "to_s", "ratio")

    names = [t["name"] for t in result["targets"]]
    assert len(names) == 3 + 2 * len(result["rows"]) + 2
    for prefix in ("a:", "b:", "c: throughput", "c: peak RSS", "c: load + 1 epoch", "c: time"):
        assert any(name.startswith(prefix) for name in names), prefix
    for t in result["targets"]:
        numbers(t, "measured", "limit", "factor")
        assert isinstance(t["passed"], bool)
