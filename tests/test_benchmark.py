"""scripts/benchmark.py, its parts run for real but small: the contender programs through its own runner, the clock of
a run's TensorBoard events, the lines against their references, and the table with every target.

The whole benchmark starts ten processes, seven of them importing Lightning: about a minute even with `--quick`, too
long for the suite. Here the Lightning run is the default run the suite already makes (`default_run`), and one bare
Trainer repeats its epochs. Timings are machine-dependent and never asserted, only that they were measured.
"""

import importlib.util
import json
import math
import os
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from thermometer.data import TemperatureDataModule

ROOT = Path(__file__).parents[1]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


@pytest.fixture(scope="module")
def benchmark():
    """scripts/benchmark.py as a module; the path and PYTHONPATH it sets (this checkout's src first) undone after."""
    path, pythonpath = list(sys.path), os.environ.get("PYTHONPATH")
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path[:] = path
    os.environ.pop("PYTHONPATH", None)
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath


def test_the_contenders_measure_their_epochs_and_end_on_their_reference_lines(benchmark, default_run, tmp_path):
    bench = benchmark.Bench(tmp_path)
    metrics = json.loads((default_run / "metrics.json").read_text())
    bare = bench.run("bare default", benchmark.program("bare_trainer", default_run / "config.yaml", metrics["epochs"]))
    book = bench.run("book", benchmark.program("plain_book"))
    csv = benchmark.generate_csv(tmp_path, 2000)
    reader = bench.run("pandas", benchmark.program("read_csv", "pandas", csv))
    for name in ("bare default", "book", "pandas"):
        for figure in ("process_s", "peak_mib"):
            [value] = bench.samples[f"{name}.{figure}"]
            assert is_number(value) and value > 0, (name, figure, value)
    assert is_number(bare["epoch_ms"]) and is_number(book["epoch_ms"]) and is_number(reader["read_s"])
    assert bare["epochs"] == metrics["epochs"] and book["epochs"] == 5000
    assert reader["rows"] == 2000
    assert is_number(benchmark.epoch_ms(default_run))  # train.py's clock: its TensorBoard events

    # The same epochs of the same data, model and optimizer: the same line, to float32's rounding.
    same = benchmark.compared(bare, benchmark.line_of(metrics), benchmark.SAME_LINE)
    assert same["ok"], same
    logged = benchmark.program("bare_trainer", default_run / "config.yaml", metrics["epochs"], "--logged")
    logged = bench.run("logged default", logged)  # the idiom's floor: self.log and torchmetrics, nothing else
    assert (
        is_number(logged["epoch_ms"])
        and benchmark.compared(logged, benchmark.line_of(metrics), benchmark.SAME_LINE)["ok"]
    )
    # The default run trains on the book's 9 training readings: its optimum is the README's.
    data = TemperatureDataModule()
    data.load()
    fit = benchmark.to_optimum(metrics, data, benchmark.BOOK_TOLERANCE)
    assert fit["ok"], fit
    assert fit["reference"] == pytest.approx((0.520504, -16.7986), abs=1e-4)
    # The book's loop, on all 11 readings: [5.3671, -17.3012] in t_un = 0.1 * t_u units, near their optimum.
    readings = TemperatureDataModule(val_fraction=0)
    readings.load()
    fit = benchmark.to_optimum(book, readings, benchmark.BOOK_TOLERANCE)
    assert fit["ok"], fit
    assert (fit["weight"], fit["bias"]) == pytest.approx((0.53671, -17.3012), abs=1e-3)
    assert fit["reference"] == pytest.approx((0.536772, -17.30479), abs=1e-4)


def test_a_line_off_its_reference_is_a_miss(benchmark):
    near = benchmark.compared({"weight": [0.52], "bias": -16.79999}, (0.52, -16.8), benchmark.SAME_LINE)
    far = benchmark.compared({"weight": 0.52, "bias": -16.7}, (0.52, -16.8), benchmark.SAME_LINE)
    assert near["ok"] and not far["ok"]
    assert far["bias_diff"] == pytest.approx(0.1) and far["weight_diff"] == 0


def test_the_table_has_every_figure_its_floor_and_target(benchmark):
    names = ["default", "bare default", "05_split", "bare 05_split", "logged 05_split", "plain 05_split", "book"]
    names.append("import lightning")
    medians = {f"{name}.{figure}": 2.0 for name in names for figure in ("process_s", "epoch_ms")}
    medians |= {"default.epochs": 42, "imports.peak_mib": 370.0, "big CSV.peak_mib": 800.0, "pandas.read_s": 0.3}
    medians |= {"pandas.peak_mib": 200.0, "default.process_s": 3.0, "default.epoch_ms": 9.0}
    args = Namespace(rows=10_000_000, epochs=3000)
    rows = benchmark.rows(dict(medians), args)
    assert [row["what"][:2] for row in rows] == ["a.", "a.", "  ", "  ", "  ", "b.", "  ", "  ", "c.", "  ", "  "]
    for row in rows:
        assert set(row) == {"what", "project", "floor", "keys", "ratio", "target", "met"}
    targets = [row["target"] for row in rows]
    # The idiom's floor, the limit and the readers are information.
    assert targets == [4, 4, None, None, None, 1.3, None, None, 1, None, None]
    assert [row["met"] for row in rows] == [False, True, None, None, None, False, None, None, False, None, None]
    assert rows[0]["ratio"] == pytest.approx(4.5)
    limit = 3 * 10_000_000 * 2 * 4 / 2**20 + 370
    assert rows[8]["ratio"] == pytest.approx(800 / limit)
    assert rows[9]["floor"] == rows[10]["floor"] == "pyarrow.csv (not installed): not measured"
    assert rows[9]["ratio"] is None
    medians |= {"pyarrow.read_s": 0.15, "pyarrow.peak_mib": 400.0}
    rows = benchmark.rows(dict(medians), args)
    assert rows[9]["ratio"] == pytest.approx(2) and rows[10]["ratio"] == pytest.approx(0.5)
    text = benchmark.table(rows)
    assert text.splitlines()[0].split() == ["what", "this", "project", "floor", "ratio", "target", "met?"]
    assert "FAIL" in text and "PASS" in text and "info" in text and "physical limit" in text
