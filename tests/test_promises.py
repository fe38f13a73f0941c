"""Promises as properties: over generated CSVs and option values, signals at seeded random moments, and the
failures found by trying cases nobody had listed (each reproduced here first)."""

import json
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from tests.conftest import Run, run_dirs, train_in
from tests.test_resume import ROOT, numbers, resume, start, wait_for
from thermometer.cli import main
from thermometer.cli.resume import resume_options
from thermometer.data import TemperatureDataModule
from thermometer.errors import UsageError
from thermometer.linear import best_line
from thermometer.run import atomic
from thermometer.run.logger import RunLogger
from thermometer.run.stop import GracefulStop

BOOK = ROOT / "configs" / "book"

# --- Generated CSVs, through the data layer in process: each loads and its closed form is numpy's, or it is refused
# in one line that names the file.

cells = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),  # beyond float32, inf and nan too
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "warm", "1,5", '"3"', "1e39", "-1e-39", "0x10", "\uff11"]),
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, dict]:
    columns = draw(st.lists(st.sampled_from(["t_u", "t_c", "x", "t_u "]), min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns) + 1), max_size=14))
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    comment = draw(st.sampled_from(["", "# readings\n"]))
    text = comment + separator.join(columns) + "\n" + "".join(separator.join(row) + "\n" for row in rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))
    options = {"val_fraction": draw(st.sampled_from([0.0, 0.2, 0.5])), "split_seed": draw(st.integers(0, 10**6))}
    return text.encode(encoding, errors="replace"), options


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_files())
def test_any_csv_loads_at_its_closed_form_or_is_refused_in_one_line(tmp_path, generated):
    content, options = generated
    path = tmp_path / "readings.csv"
    path.write_bytes(content)
    data = TemperatureDataModule(csv_path=path, **options)
    try:
        data.load()
    except UsageError as refused:
        message = str(refused)
        assert "\n" not in message and str(path) in message, message
        return
    x, y = data.train_inputs.double().numpy(), data.train_targets.double().numpy()
    assert np.isfinite(x).all() and np.isfinite(y).all() and (x.max(axis=0) > x.min(axis=0)).all()
    weight, bias = best_line(data.train_inputs, data.train_targets)
    design = np.column_stack([x / np.abs(x).max(axis=0), np.ones(len(x))])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose([*(weight.numpy() * np.abs(x).max(axis=0)), bias], expected, rtol=1e-6, atol=1e-6)


# --- Generated option values, through the whole command line in process: a run that trains, or exit 2, one line,
# no traceback and nothing written.

option_values = st.one_of(
    st.tuples(st.just("--model.optimizer.lr"), st.floats(allow_nan=True).map(repr)),
    st.tuples(st.just("--data.split_seed"), st.integers(-(2**70), 2**70).map(str)),
    st.tuples(st.just("--data.batch_size"), st.integers(-5, 2**70).map(str)),
    st.tuples(st.just("--data.val_fraction"), st.floats(-1, 2).map(repr)),
    st.tuples(st.just("--figures.max_points"), st.integers(-3, 10**12).map(str)),
    st.tuples(st.just("--model.net.init_weight"), st.floats(allow_nan=True).map(repr)),
    st.tuples(st.just("--seed_everything"), st.integers(-(2**40), 2**40).map(str)),
    st.tuples(st.just("--trainer.precision"), st.sampled_from(["16-true", "64-true", "bf16-mixed", "32", "half"])),
    st.tuples(
        st.sampled_from(["--trainer.accumulate_grad_batches", "--trainer.check_val_every_n_epoch"]),
        st.integers(-3, 3).map(str),
    ),
    st.tuples(
        st.sampled_from(["--trainer.val_check_interval", "--trainer.gradient_clip_val", "--model.scale"]),
        st.one_of(st.floats(-2, 6), st.just(float("nan"))).map(repr),
    ),
    st.tuples(st.sampled_from(["--checkpoint.mode", "--early_stopping.mode"]), st.sampled_from(["min", "max", "x"])),
)


def a_new_example_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of its own for each Hypothesis example (they share one `tmp_path`), made the working directory."""
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    monkeypatch.chdir(directory)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    return directory


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option_values)
def test_any_option_value_trains_or_is_refused_in_one_message(tmp_path, monkeypatch, capsys, option):
    directory = a_new_example_directory(tmp_path, monkeypatch)
    try:
        main([*option, "--trainer.max_epochs", "2", "--trainer.enable_progress_bar=false"])
    except SystemExit as stopped:
        err = capsys.readouterr().err
        if stopped.code == 1:  # trained and diverged: said so, and the run directory is whole
            assert err.strip().splitlines()[-1].startswith("error: training diverged"), err
            return
        assert stopped.code == 2, err
        assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
        assert not (directory / "lightning_logs").exists() or not run_dirs(directory)
        return
    [run] = run_dirs(directory)
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


# --- Generated user nets, through the whole command line in process: the type and shape of their predictions, and
# layers that act differently in training. A net that gives one real floating-point prediction a row, for every batch
# the run takes, trains and reports; any other is refused in one line, with nothing written.

SHAPES = {  # `t` is (batch, 1), or (batch, 2) for "Nx2"
    "N": lambda t: t[:, 0],
    "Nx1": lambda t: t,
    "1xN": lambda t: t.T,
    "squeeze": lambda t: t.squeeze(),  # 0-d for a batch of one row
    "Nx2": lambda t: t,
    "N+1": lambda t: torch.cat([t[:, 0], t[:1, 0]]),
    "first 3": lambda t: t[:3, 0],  # right for batches of up to 3 rows
    "scalar": lambda t: t.mean(),  # right for a batch of one row
}
ONE_A_ROW = {"N", "Nx1", "1xN", "squeeze"}
REAL = {"float32", "float64", "float16", "bfloat16"}


class Generated(nn.Module):
    """A user's net as Hypothesis draws it.

    Args:
        n_inputs: told by the data.
        dtype: the type of its predictions, a name in torch.
        shape: how its predictions are shaped, a key of SHAPES.
        layer: `none`, `dropout` or `batchnorm`: a layer that acts differently in training.
        finite: whether its predictions are numbers (else NaN).

    """

    def __init__(
        self, n_inputs: int = 1, dtype: str = "float32", shape: str = "N", layer: str = "none", finite: bool = True
    ) -> None:
        super().__init__()
        self.inner = nn.Linear(n_inputs, 4)
        self.layer = {"none": nn.Identity(), "dropout": nn.Dropout(0.3), "batchnorm": nn.BatchNorm1d(4)}[layer]
        self.outer = nn.Linear(4, 2 if shape == "Nx2" else 1)
        self.out_dtype, self.shape, self.finite = getattr(torch, dtype), shape, finite

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.outer(torch.tanh(self.layer(self.inner(x))))
        return SHAPES[self.shape](t if self.finite else t * float("nan")).to(self.out_dtype)


nets = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*sorted(REAL), "int64", "int32", "bool", "complex64"]),
        "shape": st.sampled_from(list(SHAPES)),
        "layer": st.sampled_from(["none", "dropout", "batchnorm"]),
        "finite": st.sampled_from([True, True, True, False]),
        "batch_size": st.sampled_from([None, 3, 4, 5]),  # of the book's 9 training rows, batches of 4 leave one
    }
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nets)
def test_any_users_net_trains_and_reports_or_is_refused_in_one_line(tmp_path, monkeypatch, capsys, net):
    directory = a_new_example_directory(tmp_path, monkeypatch)
    args = [f"--model.net.{key}={value}" for key, value in net.items() if key != "batch_size"]
    args += ["--data.batch_size", str(net["batch_size"])] if net["batch_size"] else []
    one_a_row = net["dtype"] in REAL and net["shape"] in ONE_A_ROW and net["finite"]
    trainable = one_a_row and not (net["layer"] == "batchnorm" and net["batch_size"] == 4)  # no spread in one row
    try:
        main(["--model.net", "tests.test_promises.Generated", *args, "--trainer.max_epochs", "3"])
    except SystemExit as stopped:
        err = capsys.readouterr().err
        if stopped.code == 1:  # trained and diverged: said so, and the run directory is whole
            assert trainable and err.strip().splitlines()[-1].startswith("error: training diverged"), err
            [run] = run_dirs(directory)
            assert json.loads((run / "metrics.json").read_text())["diverged"]
            return
        assert stopped.code == 2 and not trainable, err
        assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
        assert not run_dirs(directory)
        return
    assert trainable
    [run] = run_dirs(directory)
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_readings", "[35.7]"])
    assert len(pd.read_csv(run / "predictions.csv")) == 1


# Every optimizer of torch.optim: each shape of param_groups they have (SGD's keys, no momentum as Adam, no weight
# decay as LBFGS and Rprop, no `maximize` as Muon) and a closure (LBFGS, which Lightning's step passes). The ones
# that cannot train the line's dense 0-d and 1-d weights, and why:
REFUSED = {
    "SparseAdam": "SparseAdam does not support dense gradients",
    "Muon": "Muon only supports 2D parameters",
}
OPTIMIZERS = sorted(
    name
    for name, kind in vars(torch.optim).items()
    if isinstance(kind, type) and issubclass(kind, torch.optim.Optimizer) and kind is not torch.optim.Optimizer
)


def test_the_optimizers_tried_are_torchs_and_the_refused_ones_among_them():
    assert set(REFUSED) < set(OPTIMIZERS) and {"SGD", "Adam", "LBFGS", "Rprop"} < set(OPTIMIZERS)


def test_an_optimizer_of_2d_weights_trains_a_net_of_2d_weights(cli):
    # Muon is refused for the line (a weight of one column, a bias) and trains a net whose weights are all matrices.
    net = ["--model.net", "torch.nn.Linear", "--model.net.in_features", "1", "--model.net.out_features", "1"]
    m = cli(*net, "--model.net.bias", "false", "--model.optimizer", "Muon", "--trainer.max_epochs", "2").metrics
    assert m["optimizer"] == "Muon" and m["epochs"] == 2


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_of_torch_trains_and_is_summarized_unless_it_is_one_that_cannot(name, cli, capsys):
    if name in REFUSED:
        with pytest.raises(SystemExit) as refused:
            cli("--model.optimizer", name, "--trainer.max_epochs", "2")
        err = capsys.readouterr().err
        assert refused.value.code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"error: --model.optimizer torch.optim.{name}: cannot train the net's dense weights")
        assert REFUSED[name] in err, err
        return
    m = cli("--model.optimizer", name, "--trainer.max_epochs", "2").metrics
    assert m["optimizer"] == name and m["epochs"] == 2


# --- Signals at seeded random moments, from the run directory's first file to the last epoch.


@pytest.mark.parametrize(("seed", "stop"), [(1, signal.SIGTERM), (2, signal.SIGINT), (3, signal.SIGTERM)])
def test_a_signal_at_a_random_moment_leaves_a_run_that_resumes_exactly(seed, stop, finished_run, tmp_path, monkeypatch):
    args = ["--config", str(BOOK / "05_split.yaml"), "--trainer.max_epochs", "300"]
    reference = Run(finished_run(*args)).metrics
    (tmp_path / "stopped").mkdir()
    run = start([*args, "--trainer.enable_progress_bar=false"], tmp_path / "stopped")
    run_dir = tmp_path / "stopped" / "lightning_logs" / "05_split" / "version_0"
    wait_for(run_dir / "config.yaml", run)  # the moment the run directory has its first file
    time.sleep(random.Random(seed).uniform(0, 0.8))  # start-up, the sanity check, the first figures
    run.send_signal(stop)
    out, err = run.communicate(timeout=120)
    if run.returncode == 0:  # finished before the signal: nothing to resume, and nothing was lost
        assert numbers(json.loads((run_dir / "metrics.json").read_text())) == pytest.approx(numbers(reference))
        return
    assert run.returncode == 128 + stop, err
    assert "Traceback" not in err
    [command] = [line.split(maxsplit=1)[1].split("   ")[0] for line in out.splitlines() if line.startswith("Resume:")]
    assert json.loads((run_dir / "metrics.json").read_text())["interrupted"] == stop.name
    assert numbers(resume(command, tmp_path / "stopped", monkeypatch)) == pytest.approx(numbers(reference), rel=1e-6)


def test_a_second_ctrl_c_stops_at_once_with_status_130_and_says_what_is_left(tmp_path):
    # Epochs of 10 000 steps, seconds each: the second Ctrl-C comes before the first's epoch ends.
    t_u = torch.linspace(20, 90, 100_000)
    pd.DataFrame({"t_u": t_u, "t_c": (t_u - 32) * 5 / 9}).to_csv(tmp_path / "many.csv", index=False)
    args = ["--data.csv_path", "many.csv", "--data.batch_size", "10", "--early_stopping.patience", "1000"]
    run = start([*args, "--trainer.enable_progress_bar=false"], tmp_path)
    wait_for(tmp_path / "lightning_logs" / "default" / "version_0" / "config.yaml", run)
    time.sleep(1.0)
    run.send_signal(signal.SIGINT)
    # Again once the first is noted, as a user presses it again: two signals before Python runs its handler are one.
    deadline = time.monotonic() + 60
    while "stopping at the end of this epoch" not in run.err.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "Traceback" not in err and "Stopped at once" in err and "Detected KeyboardInterrupt" not in err, err


@pytest.fixture(scope="module")
def many_readings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`last.ckpt` of a run of one epoch on 100 000 readings: evaluating it in batches of 2 takes seconds."""
    here = tmp_path_factory.mktemp("many_readings")
    t_u = torch.linspace(20, 90, 100_000)
    pd.DataFrame({"t_u": t_u, "t_c": (t_u - 32) * 5 / 9}).to_csv(here / "many.csv", index=False)
    run = train_in(here, "--data.csv_path", str(here / "many.csv"), "--trainer.max_epochs", "1")
    return run / "checkpoints" / "last.ckpt"


def files(directory: Path) -> set[Path]:
    """Every file under `directory`, hidden temporary ones too."""
    return {path for path in directory.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    ("command", "stop"),
    [("validate", signal.SIGINT), ("test", signal.SIGTERM), ("predict", signal.SIGINT), ("predict", signal.SIGTERM)],
)
def test_a_signal_inside_an_evaluations_loop_stops_it_at_once_in_one_line_with_nothing_written(
    command, stop, many_readings, tmp_path
):
    run_dir = many_readings.parents[1]
    before = files(run_dir)
    args = [command, "--ckpt_path", str(many_readings), "--data.batch_size", "2"]
    run = start([*args, "--trainer.callbacks+=tests.looping.Looping"], tmp_path)
    wait_for(tmp_path / "looping", run)  # the loop has begun: 10 000 batches to validate, 50 000 to predict
    time.sleep(random.Random(command).uniform(0, 0.3))
    run.send_signal(stop)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 128 + stop, err
    assert err.strip() == f"Interrupted by {stop.name}: {command} stopped; nothing was written.", err
    assert "loss" not in out  # no table of results
    assert files(run_dir) == before  # no predictions.csv, whole or partial, and no temporary file


@pytest.mark.parametrize(
    ("seed", "stop"), [(1, signal.SIGINT), (2, signal.SIGTERM), (3, signal.SIGTERM), (4, signal.SIGINT)]
)
def test_a_signal_at_a_random_moment_of_predict_leaves_every_prediction_or_none(seed, stop, many_readings, tmp_path):
    run_dir = many_readings.parents[1]
    before = files(run_dir)
    run = start(["predict", "--ckpt_path", str(many_readings)], tmp_path)  # one batch, then 100 000 rows written
    time.sleep(random.Random(seed).uniform(0.1, 1))  # start-up, the loop, the file: all over within about a second
    if run.poll() is None:
        run.send_signal(stop)
    out, err = run.communicate(timeout=120)
    if run.returncode == 0:  # the predictions were made: a signal while they are written changes nothing
        [written] = files(run_dir) - before
        assert len(pd.read_csv(written)) == 100_000 and "Predictions:" in out
        written.unlink()
        return
    if run.returncode != -stop:  # -stop: SIGTERM's own ending, before the command began
        assert run.returncode == 128 + stop, err
        assert err.strip() == f"Interrupted by {stop.name}: predict stopped; nothing was written.", err
    assert files(run_dir) == before


def test_a_signal_after_the_last_epoch_leaves_the_run_finished():
    stop = GracefulStop()
    trainer = SimpleNamespace(is_global_zero=True, log_dir=".", received_sigterm=False, world_size=1)
    stop.setup(trainer, None, "fit")
    try:
        stop.on_train_end(trainer, None)
        stop.stop(signal.SIGTERM, None)  # a scheduler's SIGTERM while the summary is written
        assert stop.interrupted is None and stop.signal is None
    finally:
        stop.teardown(trainer, None, "fit")


# --- The failures that lost data or reported wrong numbers.


def test_options_given_with_a_resume_override_the_saved_ones(cli, capsys):
    first = cli("--config", str(BOOK / "05_split.yaml"), "--trainer.max_epochs", "50")
    last = first.path / "checkpoints" / "last.ckpt"
    args = ["fit", "--config", str(first.path / "config.yaml"), "--ckpt_path", str(last), "--trainer.max_epochs", "80"]
    main([*args, "--model.optimizer.lr", "0.03", "--model.optimizer.momentum", "0.5"])
    m = first.metrics
    assert m["hparams"]["optimizer.lr"] == pytest.approx(0.03) and m["hparams"]["optimizer.momentum"] == 0.5
    state = torch.load(last, weights_only=True)["optimizer_states"][0]["param_groups"][0]
    assert state["lr"] == pytest.approx(0.03) and state["momentum"] == 0.5  # what the last 30 epochs ran with
    for change, kept in (("--model.net", "MLP"), ("--model.optimizer", "Adam"), ("--model.normalize", "none")):
        with pytest.raises(SystemExit) as refused:
            main([*args[:-1], "90", change, kept])
        assert refused.value.code == 2
        assert "a resumed run keeps the" in capsys.readouterr().err
    # Resumed again without them, it keeps them: config.yaml holds the first run's values, the checkpoint the latest.
    main([*args[:-1], "100"])
    state = torch.load(last, weights_only=True)["optimizer_states"][0]["param_groups"][0]
    assert state["lr"] == pytest.approx(0.03) and state["momentum"] == 0.5 and first.metrics["epochs"] == 100
    # And the Resume command of a resumed run repeats the options it was given.
    given = [*args, "--model.optimizer.lr=0.03"]
    assert resume_options(given) == ["--trainer.max_epochs", "80", "--model.optimizer.lr", "0.03"]
    assert resume_options(["fit", "--trainer.max_epochs", "80"]) == []


def test_early_stopping_options_given_with_a_resume_override_the_saved_ones(cli):
    first = cli("--early_stopping.patience", "2", "--early_stopping.min_delta", "0.5")
    assert first.metrics["stop_reason"].startswith("early stopping") and first.metrics["epochs"] < 40
    resume = [
        "fit",
        "--config",
        str(first.path / "config.yaml"),
        "--ckpt_path",
        str(first.path / "checkpoints/last.ckpt"),
    ]
    main([*resume, "--early_stopping.patience", "1000", "--trainer.max_epochs", "60"])
    assert first.metrics["epochs"] == 60 and first.metrics["stop_reason"] == "max_epochs=60 reached"


def test_a_resume_to_fewer_epochs_than_trained_is_refused_with_nothing_written(finished_run, tmp_path, capsys):
    run = tmp_path / "lightning_logs" / "05_split" / "version_0"
    shutil.copytree(finished_run("--config", str(BOOK / "05_split.yaml"), "--trainer.max_epochs", "300"), run)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    with pytest.raises(SystemExit) as refused:
        main(
            [
                "fit",
                "--config",
                str(run / "config.yaml"),
                "--ckpt_path",
                str(run / "checkpoints/last.ckpt"),
                "--trainer.max_epochs",
                "100",
            ]
        )
    err = capsys.readouterr().err
    assert refused.value.code == 2 and err.count("\n") == 1 and "trained 300 epochs already" in err, err
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_the_closed_form_holds_for_readings_far_from_unit_scale(scale, cli, tmp_path):
    from tests.book import T_C, T_U

    csv = tmp_path / "scaled.csv"
    csv.write_text(
        "t_u,t_c\n" + "".join(f"{u * scale!r},{c}\n" for u, c in zip(T_U.tolist(), T_C.tolist(), strict=True))
    )
    m = cli("--data.csv_path", str(csv), "--trainer.max_epochs", "60").metrics
    assert m["closed_form"]["weight"][0] * scale == pytest.approx(0.520504, rel=1e-5)
    assert m["closed_form"]["train_loss"] == pytest.approx(3.01229, rel=1e-5)
    assert m["optimum"]["train_loss"] == pytest.approx(3.01229, rel=1e-5)
    assert m["train_loss"] == pytest.approx(3.01229, rel=1e-4)  # standardised, SGD gets there at any scale


def test_a_failed_write_leaves_the_previous_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    atomic.AtomicCheckpointIO().save_checkpoint({"epoch": 1}, target)

    def disk_full(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic.AtomicCheckpointIO().save_checkpoint({"epoch": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    atomic.create(tmp_path / "new.csv", lambda file: file.write("a\n"))
    with pytest.raises(FileExistsError):
        atomic.create(tmp_path / "new.csv", lambda file: file.write("b\n"))
    assert (tmp_path / "new.csv").read_text() == "a\n" and len(list(tmp_path.iterdir())) == 2


def test_a_run_directory_is_held_by_one_process_at_a_time(tmp_path):
    first = RunLogger(tmp_path, "held")
    first.log_dir  # noqa: B018 (claims version_0)
    second = RunLogger(tmp_path, "held", "version_0")
    with pytest.raises(UsageError, match="in use by another process"):
        second.claim()
    first.finalize("success")  # the first run ends
    second.claim()
    assert Path(second.log_dir).name == "version_0"
    second.finalize("success")
