"""Benchmark the project against Lightning's own floors: an epoch, the start-up, and the memory of a big CSV.

Each round runs every contender once, in turn, each in a process and a directory of its own; over `--repeats` rounds
(A B C A B C ...) the table gives medians, their ratios, and the targets of issue 13:

a. An epoch of the default run and of configs/book/05_split.yaml within 4x a bare Lightning Trainer doing the same
   epochs of the same data, model and optimizer (benchmark/bare_trainer.py); beside them the idiom's own floor, the
   bare Trainer logging the loss and the default metrics with self.log and torchmetrics (`--logged`). An epoch costs
   the steady period inside a run, from the end of its first epoch to the end of its last (start-up and the run's
   end are b's): train.py's
   clock is its TensorBoard events (`train/loss`, read by EventAccumulator); the programs note each epoch's end.
b. The default run's whole process, `python scripts/train.py`, within 1.3x `python -c "import lightning"`.
c. train.py's peak memory on a generated CSV of 10M rows within 1.0x (3 x its float32 data + the peak of importing
   what train.py imports); pandas' C parser beside pyarrow.csv on that file (benchmark/read_csv.py).

The book's plain PyTorch loop (benchmark/plain_book.py) is the physical limit: shown, never a target. Targets are
reported, not enforced: the exit status is 1 only if a run failed, a fit missed its least-squares optimum (the default
run, the book's script, the big CSV), or programs doing the same epochs of the same model ended on different lines.

    python scripts/benchmark.py                  # 5 rounds, 10M rows: about 7 minutes (--workdir DIR keeps the runs)
    python scripts/benchmark.py --quick          # 1 round, 20k rows, 30 epochs of 05_split
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS, SRC = ROOT / "scripts" / "benchmark", ROOT / "src"
# This checkout's code, whichever `thermometer` the environment installs (an editable install may point to another
# worktree): first on sys.path here, and first in PYTHONPATH for every process started from here.
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

import thermometer  # noqa: E402
from thermometer.data import TemperatureDataModule  # noqa: E402
from thermometer.linear import line, mean_squared_error  # noqa: E402
from thermometer.report.summary import finite_or_none  # noqa: E402

PYTHON, TRAIN, BOOK_SPLIT = sys.executable, str(ROOT / "scripts" / "train.py"), str(ROOT / "configs/book/05_split.yaml")
# How close a line must come to its reference (raw units; the loss gap is relative to the optimum's loss). The book's
# 5000 epochs end 3.6e-3 short of the optimum's bias; programs doing the same epochs differ by float32 rounding.
BOOK_TOLERANCE = {"weight_diff": 1e-3, "bias_diff": 1e-2, "loss_gap": 1e-5}
SCALE_TOLERANCE = {"weight_diff": 2e-3, "bias_diff": 0.1, "loss_gap": 1e-2}
SAME_LINE = {"weight_diff": 1e-5, "bias_diff": 1e-4}
UNIT = {"process_s": "s", "peak_mib": "MiB", "epoch_ms": "ms", "read_s": "s"}  # the figures noted, `<name>.<figure>`


def epoch_ms(run_dir: Path) -> float:
    """A train.py run's steady period of an epoch, by the clock of its TensorBoard events (`train/loss`, each epoch)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()  # 0: keep every event
    ends = [event.wall_time for event in events.Scalars("train/loss")]
    return 1000 * (ends[-1] - ends[0]) / (len(ends) - 1)


class Bench:
    """Runs processes in new directories under `root`, and keeps their figures (`UNIT`) as samples."""

    def __init__(self, root: Path) -> None:
        self.root, self.samples = root, defaultdict(list)

    def run(self, name: str, command: list[Any]) -> dict[str, Any]:
        """Run `command` via measure.py, note its figures; return its JSON line, or a train.py run's dir and metrics."""
        directory = Path(tempfile.mkdtemp(prefix=f"{name.replace(' ', '-')}-", dir=self.root))
        report, output = directory / "measured.json", directory / "output.log"
        with output.open("wb") as file:
            measure = map(str, [PYTHON, "-S", PROGRAMS / "measure.py", report, *command])
            subprocess.run(list(measure), cwd=directory, stdout=file, stderr=subprocess.STDOUT, check=False)
        measured = json.loads(report.read_text()) if report.is_file() else {"status": "no report"}
        if measured["status"] != 0:
            tail = output.read_text(errors="replace")[-2000:]
            raise SystemExit(f"error: {name} exited with {measured['status']} in {directory}:\n{tail}")
        last = (output.read_text().strip().splitlines() or [""])[-1]
        done = (json.loads(last) if last.startswith("{") else {}) | measured
        if run_dir := next(directory.glob("lightning_logs/*/*"), None):
            done |= {"run_dir": run_dir, "metrics": json.loads((run_dir / "metrics.json").read_text())}
            done["epoch_ms"] = epoch_ms(run_dir)
        for figure in UNIT:
            if figure in done:
                self.samples[f"{name}.{figure}"].append(done[figure])
        print(f"  {name}: {done['process_s']:.2f} s, {done['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
        return done


def program(name: str, *args: Any) -> list[Any]:
    """The command of one of benchmark/'s programs."""
    return [PYTHON, PROGRAMS / f"{name}.py", *args]


def line_of(found: dict[str, Any]) -> tuple[float, float]:
    """Weight and bias in raw units, from a run's metrics.json (a weight per input) or a program's JSON line."""
    return float(np.ravel(found["weight"])[0]), float(found["bias"])


def compared(found: dict[str, Any], reference: tuple[float, float], tolerance: dict, **more: float) -> dict[str, Any]:
    """A line, its reference line, how far apart they are, the tolerance, and whether they are within it (`ok`)."""
    (weight, bias), (ref_weight, ref_bias) = line_of(found), reference
    far = {"weight_diff": abs(weight - ref_weight), "bias_diff": abs(bias - ref_bias), **more}
    ok = all(far[key] <= limit for key, limit in tolerance.items())
    return {"weight": weight, "bias": bias, "reference": reference, **far, "tolerance": tolerance, "ok": ok}


def to_optimum(found: dict[str, Any], data: TemperatureDataModule, tolerance: dict[str, float]) -> dict[str, Any]:
    """A fitted line against the least-squares optimum of the training rows it was fitted on."""
    (weight, bias), (best_weight, best_bias) = line_of(found), data.best_line()
    rows = data.train_inputs, data.train_targets
    loss = mean_squared_error(line(torch.tensor([weight], dtype=torch.float64), bias), *rows)
    best = mean_squared_error(line(best_weight, best_bias), *rows)
    return compared(found, (best_weight.item(), best_bias), tolerance, loss_gap=(loss - best) / best)


def generate_csv(directory: Path, rows: int) -> Path:
    """`rows` readings, made once per size: `t_u` uniform in [-4, 104], `t_c = (t_u - 32) * 5/9` + noise of sd 0.5."""
    path = directory / f"readings-{rows}.csv"
    if not path.is_file():
        generator, partial = np.random.default_rng(0), path.with_suffix(".partial")
        with partial.open("w") as file:
            file.write("t_u,t_c\n")
            for first in range(0, rows, 1_000_000):  # a million lines at a time, one format call a line
                t_u = np.round(generator.uniform(-4, 104, min(1_000_000, rows - first)), 2)
                t_c = np.round((t_u - 32) * 5 / 9 + generator.normal(0, 0.5, len(t_u)), 3)
                file.write("".join(map("{:.2f},{:.3f}\n".format, t_u.tolist(), t_c.tolist())))
        partial.rename(path)
    return path


def measure(args: argparse.Namespace, bench: Bench) -> tuple[dict[str, Any], list[str]]:
    """Every contender once a round, for `args.repeats` rounds: the last round's fits, and every miss."""
    csv = generate_csv(args.workdir, args.rows)
    book, readings, big = TemperatureDataModule(), TemperatureDataModule(val_fraction=0), TemperatureDataModule(csv)
    for data in (book, readings, big):
        data.load()
    readers = ["pandas", "pyarrow"] if importlib.util.find_spec("pyarrow") else ["pandas"]
    fits, errors = {}, []
    for repeat in range(1, args.repeats + 1):
        print(f"round {repeat} of {args.repeats}", file=sys.stderr)
        default = bench.run("default", [PYTHON, TRAIN])
        bench.samples["default.epochs"].append(epochs := default["metrics"]["epochs"])
        bare = bench.run("bare default", program("bare_trainer", default["run_dir"] / "config.yaml", epochs))
        bench.run("import lightning", [PYTHON, "-c", "import lightning"])
        book_script = bench.run("book", program("plain_book"))
        split = bench.run("05_split", [PYTHON, TRAIN, "--config", BOOK_SPLIT, f"--trainer.max_epochs={args.epochs}"])
        split_bare = bench.run("bare 05_split", program("bare_trainer", split["run_dir"] / "config.yaml", args.epochs))
        split_logged = program("bare_trainer", split["run_dir"] / "config.yaml", args.epochs, "--logged")
        split_logged = bench.run("logged 05_split", split_logged)
        split_plain = bench.run("plain 05_split", program("plain_book", "--split", f"--epochs={args.epochs}"))
        bench.run("imports", [PYTHON, "-c", "import lightning, thermometer.cli"])
        scaled = bench.run("big CSV", [PYTHON, TRAIN, f"--data.csv_path={csv}", "--trainer.max_epochs=20"])
        for reader in readers:
            bench.run(reader, program("read_csv", reader, csv))
        fits = {
            "the default run": to_optimum(default["metrics"], book, BOOK_TOLERANCE),
            "the book's script": to_optimum(book_script, readings, BOOK_TOLERANCE),
            f"train.py on {args.rows} rows": to_optimum(scaled["metrics"], big, SCALE_TOLERANCE),
            "the bare Trainer beside the default run": compared(bare, line_of(default["metrics"]), SAME_LINE),
            "the bare Trainer beside 05_split": compared(split_bare, line_of(split["metrics"]), SAME_LINE),
            "the logged Trainer beside 05_split": compared(split_logged, line_of(split["metrics"]), SAME_LINE),
            "the plain loop beside 05_split": compared(split_plain, line_of(split["metrics"]), SAME_LINE),
        }
        for name, fit in fits.items():
            far = ", ".join(f"{key} {fit[key]:.2g} (tolerance {limit:g})" for key, limit in fit["tolerance"].items())
            errors += [] if fit["ok"] else [f"round {repeat}: {name} ended too far from its reference line: {far}"]
    return fits, errors


def rows(m: dict[str, float], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The table from the medians `m`: a figure of the project against its floor, their ratio, and the target."""
    data_mib = args.rows * 2 * 4 / 2**20  # two float32 columns
    m["limit.peak_mib"] = 3 * data_mib + m["imports.peak_mib"]
    limit = f"3 x {data_mib:.3g} MiB data + {m['imports.peak_mib']:.3g} MiB imports ="
    arrow = "pyarrow.csv" if "pyarrow.peak_mib" in m else "pyarrow.csv (not installed)"
    default, split = f"default run ({m['default.epochs']:.0f} epochs)", f"05_split ({args.epochs} epochs)"
    table = [  # what, this project's figure, the floor's label and figure, the target (None: information)
        (f"a. epoch, {default}", "default.epoch_ms", "bare Trainer", "bare default.epoch_ms", 4),
        (f"a. epoch, {split}", "05_split.epoch_ms", "bare Trainer", "bare 05_split.epoch_ms", 4),
        (
            f"   epoch, {split}",
            "05_split.epoch_ms",
            "bare Trainer + self.log, torchmetrics",
            "logged 05_split.epoch_ms",
            None,
        ),
        (f"   epoch, {split}: the idiom", "logged 05_split.epoch_ms", "bare Trainer", "bare 05_split.epoch_ms", None),
        (f"   epoch, {split}", "05_split.epoch_ms", "physical limit: book loop", "plain 05_split.epoch_ms", None),
        ("b. default run, whole process", "default.process_s", "import lightning", "import lightning.process_s", 1.3),
        ("   default run, whole process", "default.process_s", "physical limit: book script", "book.process_s", None),
        (f"   {split}, whole process", "05_split.process_s", "bare Trainer", "bare 05_split.process_s", None),
        (f"c. peak memory, {args.rows:,} rows", "big CSV.peak_mib", limit, "limit.peak_mib", 1),
        ("   CSV read time, pandas C parser", "pandas.read_s", arrow, "pyarrow.read_s", None),
        ("   CSV read peak memory, pandas C parser", "pandas.peak_mib", arrow, "pyarrow.peak_mib", None),
    ]
    shown = {key: f"{value:.3g} {UNIT[key.rsplit('.', 1)[1]]}" for key, value in m.items() if "epochs" not in key}
    found = []
    for what, key, label, floor, target in table:
        ratio = m[key] / m[floor] if floor in m else None
        met = None if target is None or ratio is None else ratio <= target
        floor_text = f"{label} {shown[floor]}" if floor in m else f"{label}: not measured"
        found.append({"what": what, "project": shown[key], "floor": floor_text})
        found[-1] |= {"keys": [key, floor], "ratio": ratio, "target": target, "met": met}
    return found


def table(found: list[dict[str, Any]]) -> str:
    """The rows as aligned text."""
    cells = [("what", "this project", "floor", "ratio", "target", "met?")]
    for r in found:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        target = "-" if r["target"] is None else f"<= {r['target']:g}x"
        met = {True: "PASS", False: "FAIL"}.get(r["met"], "info")
        cells.append((r["what"], r["project"], r["floor"], ratio, target, met))
    widths = [max(map(len, column)) for column in zip(*cells, strict=True)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options; `--quick` changes the defaults of the others."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 20000 rows, 30 epochs of 05_split")
    parser.add_argument("--repeats", type=int, help="rounds of every contender (default 5; quick 1)")
    parser.add_argument("--rows", type=int, help="rows of the generated CSV (default 10000000; quick 20000)")
    parser.add_argument("--epochs", type=int, help="epochs of 05_split (default 3000, its own; quick 30)")
    parser.add_argument("--output", type=Path, default=Path("benchmark.json"), help="the JSON results")
    parser.add_argument("--workdir", type=Path, help="keeps the CSV (reused) and every run; default: a temporary one")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.rows = args.rows or (20_000 if args.quick else 10_000_000)
    args.epochs = args.epochs or (30 if args.quick else 3000)
    if args.repeats < 1 or args.rows < 100 or args.epochs < 2:
        parser.error("--repeats must be positive, --rows at least 100 and --epochs at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 1 if a run failed or a line missed its reference."""
    args, load = parse_args(argv), [os.getloadavg()[0]]  # other work on the machine skews the timings
    with tempfile.TemporaryDirectory(prefix="thermometer-benchmark-") as temporary:
        args.workdir = (args.workdir or Path(temporary)).resolve()
        args.workdir.mkdir(parents=True, exist_ok=True)
        bench = Bench(Path(tempfile.mkdtemp(prefix="runs-", dir=args.workdir)))
        fits, errors = measure(args, bench)
    load.append(os.getloadavg()[0])
    medians = {key: statistics.median(values) for key, values in bench.samples.items()}
    commit = subprocess.run("git rev-parse HEAD", shell=True, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    machine = {"python": sys.version.split()[0], "torch": torch.__version__, "lightning": lightning.__version__}
    machine |= {"cpus": os.cpu_count(), "commit": commit or None, "load_average": load, "date": str(date.today())}
    machine["thermometer_source"] = str(Path(thermometer.__file__).parent)
    options = {name: getattr(args, name) for name in ("quick", "repeats", "rows", "epochs")}
    result = {"machine": machine, "options": options, "table": rows(medians, args), "medians": medians}
    result |= {"samples": bench.samples, "fits": fits, "errors": errors}
    args.output.write_text(json.dumps(finite_or_none(result), indent=2, allow_nan=False))
    rounds = f"{args.repeats} round" + ("s, medians" if args.repeats > 1 else "")
    print(f"Benchmark ({rounds}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)\n")
    print(f"{table(result['table'])}\n\nWritten: {args.output}")
    print("".join(f"error: {error}\n" for error in errors), end="", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
