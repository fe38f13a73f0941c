"""Benchmark the project against plain PyTorch: time to the optimum, overhead per epoch, and big CSVs.

Each section runs its contenders in turn, A B C A B C ..., `--repeats` times, and reports medians and ratios: a
table on the console and `benchmark.json`, with the targets of the performance issue and whether each is met.
Targets are reported, never enforced: the exit status is 0 unless a run failed or a fit missed its closed-form
optimum (then 1).

    python scripts/benchmark.py                  # the full benchmark: 1M and 10M rows, several minutes
    python scripts/benchmark.py --quick          # CI-sized: 20k and 200k rows, one repeat
    python scripts/benchmark.py --workdir bench  # keep the generated CSVs (reused next time) and the run logs
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import platform
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "scripts" / "train.py"
SRC = ROOT / "src"
# Measure this checkout's code, whichever `thermometer` the environment installs (an editable install may point to
# another worktree): first on sys.path here, and first in PYTHONPATH for every process started from here.
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

import thermometer  # noqa: E402
from thermometer.cli import main as train_main  # noqa: E402
from thermometer.data import TemperatureDataModule, read_readings  # noqa: E402
from thermometer.linear import linear_fit, trained_parameters  # noqa: E402
from thermometer.nets import Line  # noqa: E402
from thermometer.system import Normalize  # noqa: E402

# The chapter's eleven readings, for the plain book script.
T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]

BOOK_SCRIPT = f"""\
import json
import torch
t_c = torch.tensor({T_C})
t_u = torch.tensor({T_U})
t_un = 0.1 * t_u
params = torch.tensor([1.0, 0.0], requires_grad=True)
optimizer = torch.optim.SGD([params], lr=1e-2)
for epoch in range(1, 5001):
    t_p = params[0] * t_un + params[1]
    loss = ((t_p - t_c) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(json.dumps({{"weight": 0.1 * params[0].item(), "bias": params[1].item(), "loss": loss.item()}}))
"""

TRUTH = {"weight": 5 / 9, "bias": -160 / 9}  # t_c = (t_u - 32) * 5 / 9
# How close a fit must come to the least-squares optimum of its rows (raw units; loss gap relative to the optimum's).
# The book's 5000 epochs end 3.6e-3 short of the optimum's bias. Minibatch SGD at a constant lr ends in a small
# ball around the optimum, set by the size of the last batches.
BOOK_TOLERANCE = {"weight": 1e-3, "bias": 1e-2, "loss_gap": 1e-5}
SCALE_TOLERANCE = {"weight": 2e-3, "bias": 0.1, "loss_gap": 1e-2}
LONG_RUN = ["--early_stopping.patience", "1000000", "--early_stopping.min_delta", "0"]  # no early stop

DEFINITIONS = {
    "time_to_optimum.ratio_floor": "default train.py process time / `python -c 'import lightning'` time",
    "time_to_optimum.ratio_plain": "default train.py process time / plain book script process time",
    "per_epoch.ratio": "Lightning ms per epoch / plain loop ms per epoch (same model, split, step, validation)",
    "per_epoch.bare_ratio": "a bare Lightning Trainer (no logger, callbacks or metrics) ms per epoch / plain loop's",
    "scale.*.load.ratio": "project reader time / pandas.read_csv time (same file)",
    "scale.*.train.ratio": "Lightning rows/s / plain slicing loop rows/s (fraction of the limit)",
    "scale.*.load_one_epoch.ratio": "(datamodule load + one steady Lightning epoch, in process) / pandas.read_csv",
    "scale.*.load_one_epoch.process_ratio": "train.py process time for 1 epoch, imports included / pandas.read_csv",
    "scale.*.memory.ratio": "peak RSS of the train.py process / (3 x float32 data + import baseline peak RSS)",
    "scale.growth.ratio": "train.py process time for 1 epoch, largest CSV / smallest CSV",
}


# Runs sys.argv[2:], then writes its wall-clock seconds, exit status and peak RSS (KiB) as JSON to sys.argv[1].
WRAPPER = """\
import json, resource, subprocess, sys, time
start = time.perf_counter()
status = subprocess.run(sys.argv[2:]).returncode
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as file:
    json.dump({"seconds": seconds, "status": status, "peak_kb": peak_kb}, file)
"""


RETRIED: list[str] = []  # runs killed by a signal from outside and run again


class BenchmarkError(RuntimeError):
    """A run failed: the numbers would mean nothing."""


@dataclass
class Measured:
    """One process: wall-clock seconds, peak resident memory, and where its output went."""

    seconds: float
    peak_kb: int
    directory: Path


def log(message: str) -> None:
    """Progress on stderr, so that stdout is the table."""
    print(message, file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    """The median of the repeats."""
    return statistics.median(values)


def fresh_dir(parent: Path, name: str) -> Path:
    """A new empty directory under `parent` for one run (its cwd: `lightning_logs/` lands there)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent))


def run_process(command: list[str], directory: Path) -> Measured:
    """Run `command` in `directory`, output to `output.log`: its wall-clock time and its own peak RSS.

    The command runs under a small wrapper process that reports `RUSAGE_CHILDREN`: a child started straight from
    this process would inherit this process's (much bigger) peak RSS into its own `ru_maxrss`. A run killed by a
    signal (from outside: an OOM kill or someone's `pkill`) is retried twice, each retry noted in `RETRIED`.
    """
    report = directory / "measured.json"
    for attempt in range(3):
        report.unlink(missing_ok=True)
        shutil.rmtree(directory / "lightning_logs", ignore_errors=True)  # the killed run's
        with (directory / "output.log").open("wb") as output:
            wrapped = [sys.executable, "-S", "-c", WRAPPER, str(report), *command]
            done = subprocess.run(wrapped, cwd=directory, stdout=output, stderr=subprocess.STDOUT, check=False)
        measured = json.loads(report.read_text()) if report.is_file() else {"status": done.returncode}
        status = done.returncode or measured["status"]
        if status >= 0 or attempt == 2:
            break
        note = f"{' '.join(command)} killed by signal {-status}; retried"
        log(f"warning: {note}")
        RETRIED.append(note)
    if status:
        tail = (directory / "output.log").read_text(errors="replace")[-2000:]
        raise BenchmarkError(f"{' '.join(command)} exited with {status} in {directory}:\n{tail}")
    return Measured(measured["seconds"], measured["peak_kb"], directory)


def train_command(*args: str) -> list[str]:
    """`python scripts/train.py ...` with this interpreter."""
    return [sys.executable, str(TRAIN), *args]


def run_metrics(directory: Path) -> dict[str, Any]:
    """The `metrics.json` of the one run made in `directory`."""
    return json.loads(next((directory / "lightning_logs").glob("*/version_0/metrics.json")).read_text())


def lstsq_line(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The closed-form least-squares line of `y` on `x`, in float64: weight and bias."""
    x64 = x.double().reshape(-1)
    design = torch.stack([x64, torch.ones_like(x64)], dim=1)
    weight, bias = torch.linalg.lstsq(design, y.double().reshape(-1, 1)).solution.reshape(-1).tolist()
    return weight, bias


def mse(weight: float, bias: float, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error of a raw-unit line on some rows, in float64."""
    return torch.mean((weight * x.double().reshape(-1) + bias - y.double().reshape(-1)) ** 2).item()


def fit_report(
    weight: float, bias: float, x: torch.Tensor, y: torch.Tensor, tolerance: dict[str, float], truth: bool = False
) -> dict[str, Any]:
    """A fitted line against the least-squares optimum of the same rows (and against the truth if asked)."""
    best_weight, best_bias = lstsq_line(x, y)
    loss, best_loss = mse(weight, bias, x, y), mse(best_weight, best_bias, x, y)
    report: dict[str, Any] = {
        "weight": weight,
        "bias": bias,
        "loss": loss,
        "optimum": {"weight": best_weight, "bias": best_bias, "loss": best_loss},
        "weight_diff": abs(weight - best_weight),
        "bias_diff": abs(bias - best_bias),
        "loss_gap": (loss - best_loss) / best_loss,
        "tolerance": tolerance,
    }
    report["reached"] = (
        report["weight_diff"] <= tolerance["weight"]
        and report["bias_diff"] <= tolerance["bias"]
        and report["loss_gap"] <= tolerance["loss_gap"]
    )
    if truth:
        report["truth"] = dict(TRUTH)
        report["weight_diff_truth"] = abs(weight - TRUTH["weight"])
        report["bias_diff_truth"] = abs(bias - TRUTH["bias"])
    return report


def check(report: dict[str, Any], what: str, errors: list[str]) -> None:
    """Note a fit that missed its optimum."""
    if not report["reached"]:
        errors.append(
            f"{what} missed the optimum: weight {report['weight']:.6g} (optimum {report['optimum']['weight']:.6g}), "
            f"bias {report['bias']:.6g} (optimum {report['optimum']['bias']:.6g}), loss gap {report['loss_gap']:.2g}"
        )


def book_split() -> TemperatureDataModule:
    """The default run's data: the book's readings and split (training and validation rows)."""
    data = TemperatureDataModule()
    data.load()
    return data


# a. Time to the optimum, whole process ------------------------------------------------------------------------------


def time_to_optimum(workdir: Path, repeats: int, errors: list[str]) -> dict[str, Any]:
    """The default `train.py` process against the plain book script and against `import lightning`."""
    book_script = workdir / "book_loop.py"
    book_script.write_text(BOOK_SCRIPT)
    data = book_split()
    contenders: dict[str, list[str]] = {
        "train": train_command(),
        "plain": [sys.executable, str(book_script)],
        "floor": [sys.executable, "-c", "import lightning"],
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    train_fit = plain_fit = {}
    for repeat in range(repeats):
        for name, command in contenders.items():
            measured = run_process(command, fresh_dir(workdir / "a", name))
            samples[name].append(measured.seconds)
            log(f"[a {repeat + 1}/{repeats}] {name}: {measured.seconds:.2f} s")
            if name == "train":
                metrics = run_metrics(measured.directory)
                train_fit = fit_report(
                    metrics["weight"][0], metrics["bias"], data.train_inputs, data.train_targets, BOOK_TOLERANCE
                )
                check(train_fit, "the default run", errors)
            elif name == "plain":
                out = json.loads((measured.directory / "output.log").read_text().strip().splitlines()[-1])
                plain_fit = fit_report(out["weight"], out["bias"], torch.tensor(T_U), torch.tensor(T_C), BOOK_TOLERANCE)
                check(plain_fit, "the plain book script", errors)
    train_s, plain_s, floor_s = (median(samples[name]) for name in contenders)
    return {
        "train_s": train_s,
        "plain_s": plain_s,
        "floor_s": floor_s,
        "ratio_floor": train_s / floor_s,
        "ratio_plain": train_s / plain_s,
        "weight": train_fit["weight"],
        "bias": train_fit["bias"],
        "optimum": train_fit["optimum"],
        "weight_diff": train_fit["weight_diff"],
        "bias_diff": train_fit["bias_diff"],
        "train_fit": train_fit,
        "plain_fit": plain_fit,
        "commands": {name: " ".join(command) for name, command in contenders.items()},
        "samples_s": samples,
    }


# b. Overhead per epoch on the eleven readings ------------------------------------------------------------------------


def lightning_in_process(workdir: Path, epochs: int) -> tuple[float, dict[str, Any]]:
    """`train.py --trainer.max_epochs N` without early stopping, run in this process: seconds and `metrics.json`."""
    directory = fresh_dir(workdir / "b", f"lightning-{epochs}")
    args = ["--trainer.max_epochs", str(epochs), *LONG_RUN, "--trainer.enable_progress_bar=false"]
    output, environment = io.StringIO(), dict(os.environ)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with contextlib.chdir(directory), contextlib.redirect_stdout(output):
        start = time.perf_counter()
        try:
            train_main(args)
        except SystemExit as stop:
            raise BenchmarkError(f"train.py {' '.join(args)} exited with {stop.code}:\n{output.getvalue()}") from None
        finally:  # seed_everything sets PL_GLOBAL_SEED, which the processes started later would inherit
            os.environ.clear()
            os.environ.update(environment)
            for signum, handler in handlers.items():  # a run leaves Lightning's SIGTERM handler installed
                signal.signal(signum, handler)
        seconds = time.perf_counter() - start
    (directory / "output.log").write_text(output.getvalue())
    return seconds, run_metrics(directory)


def standardized_line(data: TemperatureDataModule) -> torch.nn.Sequential:
    """The default run's model without Lightning: the line behind a standardisation of the training rows."""
    normalize = Normalize(1, "standardize")
    normalize.fit(data.train_inputs)
    return torch.nn.Sequential(normalize, Line(1))


def raw_line(model: torch.nn.Sequential, data: TemperatureDataModule) -> tuple[float, float]:
    """Weight and bias of `standardized_line` in the units of the raw readings."""
    weight, bias = linear_fit(model[1], model[0], data.train_inputs, data.train_targets).raw(
        *trained_parameters(model[1])
    )
    return weight.item(), bias


def plain_epochs(data: TemperatureDataModule, epochs: int) -> tuple[float, torch.nn.Sequential]:
    """The same epochs in plain PyTorch: full-batch SGD step on the training rows, then the validation loss."""
    model = standardized_line(data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    x, y, x_val, y_val = data.train_inputs, data.train_targets, data.val_inputs, data.val_targets
    start = time.perf_counter()
    for _ in range(epochs):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            F.mse_loss(model(x_val), y_val).item()  # a number, as early stopping needs one
    return time.perf_counter() - start, model


class BareModule(lightning.LightningModule):
    """Lightning's floor: the same model, step and validation forward, with no logging, metrics or callbacks."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        t_u, t_c = batch
        return F.mse_loss(self.model(t_u), t_c)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        t_u, t_c = batch
        F.mse_loss(self.model(t_u), t_c)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.2)


def bare_lightning_epochs(data: TemperatureDataModule, epochs: int) -> float:
    """Seconds of `epochs` epochs of a bare Lightning Trainer on the book's split, full batch."""
    model = standardized_line(data)
    trainer = lightning.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    start = time.perf_counter()
    trainer.fit(BareModule(model), data.train_dataloader(), data.val_dataloader())
    seconds = time.perf_counter() - start
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    return seconds


def per_epoch(workdir: Path, repeats: int, epochs: tuple[int, int], errors: list[str]) -> dict[str, Any]:
    """Lightning's cost of an epoch, (time of `long` epochs - time of `short`) / difference, against plain PyTorch."""
    short, long = epochs
    data = book_split()
    lightning_in_process(workdir, 2)  # warm-up: matplotlib and Lightning's lazy imports are paid here
    samples: dict[str, list[float]] = {"lightning_ms": [], "plain_ms": [], "bare_lightning_ms": []}
    lightning_fit = plain_fit = {}
    for repeat in range(repeats):
        short_s, _ = lightning_in_process(workdir, short)
        long_s, metrics = lightning_in_process(workdir, long)
        plain_s, model = plain_epochs(data, long - short)
        bare_s = bare_lightning_epochs(data, long) - bare_lightning_epochs(data, short)
        samples["bare_lightning_ms"].append(1000 * bare_s / (long - short))
        samples["lightning_ms"].append(1000 * (long_s - short_s) / (long - short))
        samples["plain_ms"].append(1000 * plain_s / (long - short))
        log(
            f"[b {repeat + 1}/{repeats}] lightning {short} epochs {short_s:.2f} s, {long} epochs {long_s:.2f} s; "
            f"plain {long - short} epochs {plain_s:.3f} s; bare Lightning {long - short} epochs {bare_s:.2f} s"
        )
        lightning_fit = fit_report(
            metrics["weight"][0], metrics["bias"], data.train_inputs, data.train_targets, BOOK_TOLERANCE
        )
        check(lightning_fit, f"the Lightning run of {long} epochs", errors)
        weight, bias = raw_line(model, data)
        plain_fit = fit_report(weight, bias, data.train_inputs, data.train_targets, BOOK_TOLERANCE)
        check(plain_fit, f"the plain loop of {long - short} epochs", errors)
    lightning_ms, plain_ms = median(samples["lightning_ms"]), median(samples["plain_ms"])
    bare_ms = median(samples["bare_lightning_ms"])
    return {
        "lightning_ms": lightning_ms,
        "plain_ms": plain_ms,
        "bare_lightning_ms": bare_ms,
        "ratio": lightning_ms / plain_ms,
        "bare_ratio": bare_ms / plain_ms,
        "epochs": [short, long],
        "lightning_fit": lightning_fit,
        "plain_fit": plain_fit,
        "samples_ms": samples,
    }


# c. Scale -----------------------------------------------------------------------------------------------------------


def generate_csv(directory: Path, rows: int, seed: int) -> tuple[Path, float]:
    """A CSV of `rows` Fahrenheit readings and noisy Celsius, reused if already made; path and seconds to make it.

    `t_u` uniform in [-4, 104] °F with 2 decimals; `t_c = (t_u - 32) * 5/9` plus Gaussian noise of sd 0.5, 3 decimals.
    Written in chunks of a million lines with one format call per line (about 0.45 s per million rows).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"readings-{rows}-seed{seed}.csv"
    info = path.with_suffix(".json")
    if path.is_file() and info.is_file():
        return path, json.loads(info.read_text())["generate_s"]
    start = time.perf_counter()
    generator = np.random.default_rng(seed)
    partial = path.with_suffix(".partial")
    with partial.open("w") as file:
        file.write("t_u,t_c\n")
        for first in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - first)
            t_u = np.round(generator.uniform(-4, 104, n), 2)
            t_c = np.round((t_u - 32) * 5 / 9 + generator.normal(0, 0.5, n), 3)
            file.write("".join(map("{:.2f},{:.3f}\n".format, t_u.tolist(), t_c.tolist())))
    partial.rename(path)  # a file of that name is always complete
    seconds = time.perf_counter() - start
    info.write_text(json.dumps({"rows": rows, "seed": seed, "generate_s": seconds}))
    return path, seconds


def plain_slicing(data: TemperatureDataModule, batch_size: int, epochs: int) -> tuple[list[float], torch.nn.Module]:
    """The limit: SGD steps over contiguous slices of the training tensors, then the validation loss; epoch times."""
    model = standardized_line(data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    x, y, x_val, y_val = data.train_inputs, data.train_targets, data.val_inputs, data.val_targets
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for i in range(0, len(y), batch_size):
            loss = F.mse_loss(model(x[i : i + batch_size]), y[i : i + batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            total = sum(
                F.mse_loss(model(x_val[i : i + batch_size]), y_val[i : i + batch_size], reduction="sum")
                for i in range(0, len(y_val), batch_size)
            )
            (total / len(y_val)).item()
        times.append(time.perf_counter() - start)
    return times, model


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds a call takes, and its result."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def varint(buffer: bytes, position: int) -> tuple[int, int]:
    """A protobuf varint at `position`: its value and the position after it."""
    value = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def fields(message: bytes) -> Iterator[tuple[int, Any]]:
    """The (field number, raw value) pairs of a protobuf message: just enough to read TensorBoard's events."""
    position = 0
    while position < len(message):
        key, position = varint(message, position)
        wire = key & 7
        if wire == 0:
            value, position = varint(message, position)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = message[position : position + size], position + size
        elif wire == 2:
            size, position = varint(message, position)
            value, position = message[position : position + size], position + size
        else:
            raise BenchmarkError(f"unexpected protobuf wire type {wire} in a TensorBoard event file")
        yield key >> 3, value


def logged_at(run_dir: Path, tag: str) -> dict[int, float]:
    """When the run logged `tag` at each step (the epoch, counted from 1): wall-clock times from its event files.

    Event files are TFRecords (length, CRC, an `Event` message, CRC); an `Event` has `wall_time` (field 1), `step`
    (2) and a `Summary` (5) of `Value`s whose field 1 is the tag.
    """
    times: dict[int, float] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data, position = path.read_bytes(), 0
        while position + 12 <= len(data):
            (size,) = struct.unpack_from("<Q", data, position)
            event = dict(fields(data[position + 12 : position + 12 + size]))
            position += 12 + size + 4
            values = [dict(fields(value)) for number, value in fields(event.get(5, b"")) if number == 1]
            if any(value.get(1) == tag.encode() for value in values):
                times[event.get(2, 0)] = struct.unpack("<d", event[1])[0]
    return times


def scale(
    workdir: Path, data_dir: Path, sizes: list[int], repeats: int, batch_size: int, seed: int, errors: list[str]
) -> dict[str, Any]:
    """Big CSVs: load rate, training throughput, peak memory, `load + one epoch`, and growth with size.

    For each size, `train.py` runs twice as a whole process: 1 epoch (`load + one epoch`, growth, memory) and 2
    epochs (memory, the fit, and the time of its second epoch, from the run's own TensorBoard timestamps of
    `train/loss`: no process start-up noise). The plain loop runs 2 epochs over the same tensors; its second counts.
    """
    csvs = {rows: generate_csv(data_dir, rows, seed) for rows in sizes}
    names = ["pandas", "project", "datamodule", "train_1", "train_2", "lightning_epoch", "plain_epoch"]
    samples: dict[int, dict[str, list[float]]] = {rows: {name: [] for name in names} for rows in sizes}
    peaks: dict[int, list[int]] = {rows: [] for rows in sizes}
    baseline: dict[str, list[float]] = {"seconds": [], "peak_kb": []}
    fits: dict[int, dict[str, Any]] = {}
    for repeat in range(repeats):
        measured = run_process([sys.executable, "-c", "import lightning, thermometer.cli"], fresh_dir(workdir, "base"))
        baseline["seconds"].append(measured.seconds)
        baseline["peak_kb"].append(measured.peak_kb)
        log(f"[c {repeat + 1}/{repeats}] import baseline: {measured.seconds:.2f} s, {measured.peak_kb / 1024:.0f} MiB")
        for rows in sizes:
            path, _ = csvs[rows]
            got = samples[rows]
            got["pandas"].append(timed(lambda path=path: pd.read_csv(path))[0])
            got["project"].append(timed(lambda path=path: read_readings(path, ["t_u"], "t_c"))[0])
            data = TemperatureDataModule(csv_path=path, batch_size=batch_size)
            got["datamodule"].append(timed(data.load)[0])
            run_peaks = []
            for epochs in (1, 2):
                options = ["--data.csv_path", str(path), "--data.batch_size", str(batch_size)]
                command = train_command(*options, "--trainer.max_epochs", str(epochs), *LONG_RUN)
                measured = run_process(command, fresh_dir(workdir / "c", f"{rows}-{epochs}epochs"))
                got[f"train_{epochs}"].append(measured.seconds)
                run_peaks.append(measured.peak_kb)
            peaks[rows].append(max(run_peaks))
            run_dir = next((measured.directory / "lightning_logs").glob("*/version_0"))
            times = logged_at(run_dir, "train/loss")
            got["lightning_epoch"].append(times[2] - times[1])
            epoch_times, model = plain_slicing(data, batch_size, 2)
            got["plain_epoch"].append(epoch_times[-1])
            log(
                f"[c {repeat + 1}/{repeats}] {rows} rows: read_csv {got['pandas'][-1]:.2f} s, read_readings "
                f"{got['project'][-1]:.2f} s; train.py 1 epoch {got['train_1'][-1]:.2f} s, 2 epochs "
                f"{got['train_2'][-1]:.2f} s, its 2nd epoch {got['lightning_epoch'][-1]:.3f} s; plain loop's 2nd "
                f"epoch {epoch_times[-1]:.3f} s; peak {peaks[rows][-1] / 1024:.0f} MiB"
            )
            x, y = data.train_inputs, data.train_targets
            weight, bias = raw_line(model, data)
            metrics = run_metrics(measured.directory)  # of the 2-epoch run
            fits[rows] = {
                "lightning": fit_report(metrics["weight"][0], metrics["bias"], x, y, SCALE_TOLERANCE, truth=True),
                "plain": fit_report(weight, bias, x, y, SCALE_TOLERANCE),
            }
            check(fits[rows]["lightning"], f"train.py on {rows} rows (2 epochs)", errors)
            check(fits[rows]["plain"], f"the plain slicing loop on {rows} rows (2 epochs)", errors)
            del data
    baseline_kb = median(baseline["peak_kb"])
    result: dict[str, Any] = {
        "import_baseline": {"seconds": median(baseline["seconds"]), "peak_mb": baseline_kb / 1024},
        "batch_size": batch_size,
    }
    for rows in sizes:
        got = samples[rows]
        pandas_s, project_s, process_s = median(got["pandas"]), median(got["project"]), median(got["train_1"])
        epoch_s, plain_epoch_s = median(got["lightning_epoch"]), median(got["plain_epoch"])
        data_mb = rows * 2 * 4 / 2**20
        peak_mb = median(peaks[rows]) / 1024
        limit_mb = 3 * data_mb + baseline_kb / 1024
        result[str(rows)] = {
            "rows": rows,
            "csv_mb": csvs[rows][0].stat().st_size / 2**20,
            "generate_s": csvs[rows][1],
            "load": {
                "project_s": project_s,
                "pandas_s": pandas_s,
                "datamodule_s": median(got["datamodule"]),
                "project_rows_per_s": rows / project_s,
                "pandas_rows_per_s": rows / pandas_s,
                "ratio": project_s / pandas_s,
            },
            "train": {
                "batch_size": batch_size,
                "lightning_epoch_s": epoch_s,
                "plain_epoch_s": plain_epoch_s,
                "lightning_rows_per_s": rows / epoch_s,
                "plain_rows_per_s": rows / plain_epoch_s,
                "ratio": plain_epoch_s / epoch_s,
                "process_difference_s": median([b - a for a, b in zip(got["train_1"], got["train_2"], strict=True)]),
            },
            "load_one_epoch": {
                "in_process_s": median(got["datamodule"]) + epoch_s,
                "process_s": process_s,
                "pandas_read_csv_s": pandas_s,
                "ratio": (median(got["datamodule"]) + epoch_s) / pandas_s,
                "process_ratio": process_s / pandas_s,
            },
            "memory": {
                "peak_mb": peak_mb,
                "data_mb": data_mb,
                "import_baseline_mb": baseline_kb / 1024,
                "limit_mb": limit_mb,
                "ratio": peak_mb / limit_mb,
            },
            "fit": fits[rows]["lightning"],
            "plain_fit": fits[rows]["plain"],
            "samples_s": got,
            "peak_mb_samples": [kb / 1024 for kb in peaks[rows]],
        }
    if len(sizes) > 1:
        small, big = (result[str(rows)]["load_one_epoch"]["process_s"] for rows in (sizes[0], sizes[-1]))
        base_s = result["import_baseline"]["seconds"]
        result["growth"] = {
            "from_rows": sizes[0],
            "to_rows": sizes[-1],
            "from_s": small,
            "to_s": big,
            "ratio": big / small,
            "ratio_above_import": (big - base_s) / (small - base_s),
        }
    return result


# Targets, machine, table --------------------------------------------------------------------------------------------


def target(name: str, measured: float, op: str, limit: float) -> dict[str, Any]:
    """One target of the issue: met or not, and by what factor it is missed (above 1) or beaten (below 1)."""
    passed = measured <= limit if op == "<=" else measured >= limit
    factor = measured / limit if op == "<=" else (limit / measured if measured > 0 else math.inf)
    return {"name": name, "measured": measured, "op": op, "limit": limit, "passed": passed, "factor": factor}


def targets(result: dict[str, Any], sizes: list[int]) -> list[dict[str, Any]]:
    """Every target of the issue against this run's medians."""
    a, b, c = result["time_to_optimum"], result["per_epoch"], result["scale"]
    found = [
        target("a: default run / import floor (x)", a["ratio_floor"], "<=", 1.5),
        target("a: default run / plain book script (x)", a["ratio_plain"], "<=", 1.3),
        target("b: per-epoch Lightning / plain (x)", b["ratio"], "<=", 3.0),
    ]
    for rows in sizes:
        size = c[str(rows)]
        found.append(target(f"c: throughput {rows:,} rows / slicing limit", size["train"]["ratio"], ">=", 0.5))
    for rows in sizes:
        memory = c[str(rows)]["memory"]
        found.append(
            target(f"c: peak RSS {rows:,} rows (MiB) vs 3x data + import", memory["peak_mb"], "<=", memory["limit_mb"])
        )
    biggest = c[str(sizes[-1])]["load_one_epoch"]
    found.append(target(f"c: load + 1 epoch {sizes[-1]:,} rows / read_csv (x)", biggest["ratio"], "<=", 3.0))
    if "growth" in c:
        found.append(target(f"c: time {sizes[-1]:,} / {sizes[0]:,} rows (x)", c["growth"]["ratio"], "<=", 12.0))
    return found


def machine() -> dict[str, Any]:
    """Versions, cores and the date: what the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    models = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "thermometer_source": str(Path(thermometer.__file__).parent),
        "load_average_start": list(os.getloadavg()),  # other work on the machine skews the timings
    }


def rate(value: float) -> str:
    """Rows per second, readable."""
    return f"{value / 1e6:.2f} M rows/s"


def table(result: dict[str, Any], sizes: list[int]) -> str:
    """The results as text: one line per measurement, then the targets."""
    a, b, c = result["time_to_optimum"], result["per_epoch"], result["scale"]
    m = result["machine"]
    repeats = f"{result['repeats']} repeats, medians" if result["repeats"] > 1 else "1 repeat"
    lines = [
        f"Benchmark ({'quick' if result['quick'] else 'full'}, {repeats}): "
        f"Python {m['python']}, torch {m['torch']}, lightning {m['lightning']}, {m['cpu_count']} CPUs, {m['date']}",
        f"Load average (1 min) {m['load_average_start'][0]:.2f} at the start, {m['load_average_end'][0]:.2f} at the end"
        + ("   (the machine was busy: timings are skewed)" if m["load_average_end"][1] > 1.5 else ""),
        "",
        "a. Time to the optimum, whole process",
        f"  train.py (defaults)           {a['train_s']:8.2f} s   weight {a['weight']:.6f} bias {a['bias']:.5f}"
        f"   (optimum {a['optimum']['weight']:.6f} {a['optimum']['bias']:.5f}; |diff| {a['weight_diff']:.1e}"
        f" {a['bias_diff']:.1e})",
        f"  plain book script (5000 ep.)  {a['plain_s']:8.2f} s   weight {a['plain_fit']['weight']:.6f} "
        f"bias {a['plain_fit']['bias']:.5f}   (optimum {a['plain_fit']['optimum']['weight']:.6f} "
        f"{a['plain_fit']['optimum']['bias']:.5f}; |diff| {a['plain_fit']['weight_diff']:.1e}"
        f" {a['plain_fit']['bias_diff']:.1e})",
        f"  python -c 'import lightning'  {a['floor_s']:8.2f} s",
        f"  train / floor {a['ratio_floor']:.2f}x   train / plain {a['ratio_plain']:.2f}x",
        "",
        f"b. Overhead per epoch, 11 readings ({b['epochs'][1]} - {b['epochs'][0]} epochs)",
        f"  Lightning (full default setup) {b['lightning_ms']:8.3f} ms/epoch",
        f"  plain PyTorch loop             {b['plain_ms']:8.3f} ms/epoch",
        f"  bare Lightning Trainer         {b['bare_lightning_ms']:8.3f} ms/epoch   (no logger, callbacks, metrics)",
        f"  ratio {b['ratio']:.1f}x   (bare Lightning alone {b['bare_ratio']:.1f}x)",
        "",
        f"c. Scale (batch size {c['batch_size']}; import baseline {c['import_baseline']['seconds']:.2f} s, "
        f"{c['import_baseline']['peak_mb']:.0f} MiB peak)",
    ]
    for rows in sizes:
        s = c[str(rows)]
        load, train, once, memory, fit = s["load"], s["train"], s["load_one_epoch"], s["memory"], s["fit"]
        lines += [
            f"  {rows:,} rows ({s['csv_mb']:.0f} MB CSV, generated in {s['generate_s']:.1f} s)",
            f"    load: read_readings {load['project_s']:.2f} s ({rate(load['project_rows_per_s'])}), "
            f"read_csv {load['pandas_s']:.2f} s ({rate(load['pandas_rows_per_s'])}): {load['ratio']:.1f}x; "
            f"datamodule load {load['datamodule_s']:.2f} s",
            f"    train (2nd epoch): Lightning {train['lightning_epoch_s']:.3f} s "
            f"({rate(train['lightning_rows_per_s'])}), "
            f"slicing loop {train['plain_epoch_s']:.3f} s ({rate(train['plain_rows_per_s'])}): "
            f"{train['ratio']:.3f} of the limit",
            f"    load + 1 epoch: {once['in_process_s']:.2f} s in process, read_csv {once['pandas_read_csv_s']:.2f} s: "
            f"{once['ratio']:.1f}x   (whole train.py process {once['process_s']:.2f} s: {once['process_ratio']:.1f}x)",
            f"    peak RSS {memory['peak_mb']:.0f} MiB; float32 data {memory['data_mb']:.0f} MiB, "
            f"limit 3x data + import {memory['limit_mb']:.0f} MiB: {memory['ratio']:.2f}x the limit",
            f"    fit (2 epochs): weight {fit['weight']:.6f} bias {fit['bias']:.4f}; lstsq "
            f"{fit['optimum']['weight']:.6f} {fit['optimum']['bias']:.4f} (|diff| {fit['weight_diff']:.1e} "
            f"{fit['bias_diff']:.1e}); truth {TRUTH['weight']:.6f} {TRUTH['bias']:.4f} (|diff| "
            f"{fit['weight_diff_truth']:.1e} {fit['bias_diff_truth']:.1e})",
        ]
    if "growth" in c:
        g = c["growth"]
        lines.append(
            f"  growth {g['from_rows']:,} -> {g['to_rows']:,} rows: {g['from_s']:.2f} s -> {g['to_s']:.2f} s, "
            f"{g['ratio']:.2f}x ({g['ratio_above_import']:.2f}x above the import baseline)"
        )
    lines += ["", "Targets (reported, not enforced)"]
    for t in result["targets"]:
        verdict = "pass" if t["passed"] else f"FAIL ({t['factor']:.2f}x off)"
        lines.append(f"  {t['name']:<58} {t['measured']:10.3f} {t['op']} {t['limit']:<8.3g} {verdict}")
    return "\n".join(lines)


def finite_or_none(value: Any) -> Any:
    """JSON has no inf or NaN: such numbers become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options; `--quick` changes the defaults of the others."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: 20k and 200k rows, 1 repeat, fewer epochs")
    parser.add_argument("--repeats", type=int, help="rounds of each section (default 5, quick 1)")
    parser.add_argument("--rows", type=int, nargs="+", help="CSV sizes (default 1000000 10000000, quick 20000 200000)")
    parser.add_argument("--batch-size", type=int, help="batch size of the CSV runs (default 65536, quick 1000)")
    parser.add_argument("--epochs", type=int, nargs=2, help="per-epoch section: short and long run (200 1200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated CSVs")
    parser.add_argument("--output", type=Path, default=Path("benchmark.json"), help="the JSON results file")
    parser.add_argument(
        "--workdir", type=Path, help="CSVs (kept and reused) and run directories; default: a temporary directory"
    )
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.rows = sorted(args.rows or ([20_000, 200_000] if args.quick else [1_000_000, 10_000_000]))
    args.batch_size = args.batch_size or (1000 if args.quick else 65_536)
    args.epochs = tuple(args.epochs or ((20, 120) if args.quick else (200, 1200)))
    if args.repeats < 1 or args.batch_size < 1 or min(args.rows) < 100 or not 0 < args.epochs[0] < args.epochs[1]:
        parser.error("--repeats and --batch-size must be positive, --rows at least 100, --epochs two rising counts")
    return args


def run(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[str]]:
    """Every section, in order; the results and the fits that missed their optimum."""
    errors: list[str] = []
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=workdir))
    log(f"runs in {runs}")
    result: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "repeats": args.repeats,
        "rows": args.rows,
        "definitions": DEFINITIONS,
    }
    started = time.perf_counter()
    result["time_to_optimum"] = time_to_optimum(runs, args.repeats, errors)
    result["per_epoch"] = per_epoch(runs, args.repeats, args.epochs, errors)
    result["scale"] = scale(runs, workdir / "data", args.rows, args.repeats, args.batch_size, args.seed, errors)
    result["targets"] = targets(result, args.rows)
    result["benchmark_s"] = time.perf_counter() - started
    result["errors"] = errors
    result["retried"] = RETRIED
    result["machine"]["load_average_end"] = list(os.getloadavg())
    return result, errors


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 1 if a run failed or missed its optimum."""
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="thermometer-benchmark-")))
        else:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        try:
            result, errors = run(args, workdir)
        except BenchmarkError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    args.output.write_text(json.dumps(finite_or_none(result), indent=2, allow_nan=False) + "\n")
    print(table(result, args.rows))
    print(f"\nWritten: {args.output}   ({result['benchmark_s']:.0f} s)")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
