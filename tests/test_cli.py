"""End to end: the command line as a user types it, checked against the closed-form optimum and the book."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.book import BOOK_TRAIN_ROWS, BOOK_VAL_ROWS, T_C, T_U
from tests.conftest import Run
from thermometer.cli import main
from thermometer.report.summary import NUMBERS

ROOT = Path(__file__).parents[1]
SCALARS = [f"{stage}/{name}" for stage in ("train", "val") for name in ("loss", "MeanAbsoluteError", "R2Score")]


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return accumulator


def same_numbers(a: dict, b: dict) -> bool:
    keys = ["weight", "bias", "train_loss", "val_loss", "epochs", "best_loss"]
    return [a[k] for k in keys] == [b[k] for k in keys]


def test_default_run_reaches_the_closed_form_optimum_and_stops_early(default_run):
    metrics = (default_run / "metrics.json").read_text()
    m = yaml.safe_load(metrics)
    best = m["closed_form"]
    assert abs(m["weight"][0] - best["weight"][0]) <= 1e-3 * abs(best["weight"][0])
    assert abs(m["bias"] - best["bias"]) <= 1e-2
    # The default split is the book's: its optimum is printed in the reference.
    assert best["weight"][0] == pytest.approx(0.520504, abs=1e-5)
    assert best["bias"] == pytest.approx(-16.7986, abs=1e-4)
    assert m["train_loss"] == pytest.approx(3.01229, rel=1e-5)
    assert m["val_loss"] == pytest.approx(3.54439, rel=1e-4)
    assert m["epochs"] < 100  # max_epochs is 1000
    assert m["stop_reason"].startswith("early stopping: val/loss improved by less than")
    assert m["monitor"] == "val/loss"
    assert m["best_loss"] == pytest.approx(m["val_loss"], rel=1e-5)
    # The default metrics of the learned line on each side of the book's split: mean absolute error and R².
    for rows, stage in ((BOOK_TRAIN_ROWS, "train"), (BOOK_VAL_ROWS, "val")):
        t_p, t_c = m["weight"][0] * T_U[rows].double() + m["bias"], T_C[rows].double()
        assert m[f"{stage}/MeanAbsoluteError"] == pytest.approx((t_p - t_c).abs().mean().item(), rel=1e-9)
        r2 = 1 - ((t_p - t_c) ** 2).sum() / ((t_c - t_c.mean()) ** 2).sum()
        assert m[f"{stage}/R2Score"] == pytest.approx(r2.item(), rel=1e-9)


def test_run_directory_holds_config_hparams_and_two_checkpoints(default_run):
    config = yaml.safe_load((default_run / "config.yaml").read_text())
    assert config["seed_everything"] == 42
    hparams = yaml.safe_load((default_run / "hparams.yaml").read_text())
    assert hparams["optimizer"]["class_path"] == "torch.optim.SGD"
    assert hparams["net"]["class_path"] == "thermometer.Line" and hparams["net"]["init_args"]["n_inputs"] == 1
    assert hparams["normalize"] == "standardize" and hparams["split_seed"] == 149
    assert default_run.parent.name == "default"  # no --config: the run's name in TensorBoard
    m = yaml.safe_load((default_run / "metrics.json").read_text())
    best, last = (
        torch.load(default_run.parents[2] / m[k], weights_only=True) for k in ("best_checkpoint", "last_checkpoint")
    )
    assert Path(m["best_checkpoint"]).name == "best.ckpt" and Path(m["last_checkpoint"]).name == "last.ckpt"
    assert best["epoch"] < last["epoch"] == m["epochs"]
    assert sorted(p.name for p in (default_run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    # Normalisation statistics come from the training rows only, and travel inside the checkpoint.
    center = last["state_dict"]["normalize.center"]
    assert center.item() == pytest.approx(T_U[BOOK_TRAIN_ROWS].mean().item(), rel=1e-6)


def test_event_file_has_metrics_and_parameters_per_epoch_and_no_one_point_charts(default_run):
    acc = events(default_run)
    m = yaml.safe_load((default_run / "metrics.json").read_text())
    tags = acc.Tags()["scalars"]
    gradients = ["weights/grad/weight", "weights/grad/bias"]
    assert set(tags) == {*SCALARS, "weights/weight", "weights/bias", *gradients}  # no hp_metric
    assert len(acc.Scalars("val/loss")) == len(acc.Scalars("weights/weight")) == m["epochs"]
    # TensorBoard's step is the epoch, counted from 1 as the book and the summary count, for every metric.
    for tag in tags:
        assert [e.step for e in acc.Scalars(tag)] == list(range(1, m["epochs"] + 1)), tag
    assert min(acc.Scalars("val/loss"), key=lambda e: e.value).step == m["best_epoch"]
    assert acc.Scalars("val/loss")[-1].value == pytest.approx(m["val_loss"], rel=1e-5)
    assert acc.Scalars("weights/weight")[-1].value == pytest.approx(m["weight"][0], rel=1e-6)  # raw units
    assert acc.Scalars("weights/bias")[-1].value == pytest.approx(m["bias"], rel=1e-6)


def test_hparams_are_the_runs_choices_with_no_experiment_of_its_own(default_run):
    content = events(default_run).PluginTagToContent("hparams")
    # Each run writing its own experiment summary made TensorBoard tick the first run's columns for every run;
    # without one, it ticks the choices that differ between runs and takes the runs' curves as metrics.
    assert list(content) == ["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    chosen = {
        name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        for name, value in start.hparams.items()
    }
    m = yaml.safe_load((default_run / "metrics.json").read_text())
    assert chosen == pytest.approx(m["hparams"])
    assert chosen["optimizer"] == "SGD" and chosen["optimizer.lr"] == pytest.approx(0.2) and chosen["net"] == "Line"
    assert chosen["normalize"] == "standardize" and chosen["input_columns"] == "t_u" and chosen["split_seed"] == 149


def test_validate_and_test_from_the_best_checkpoint_give_the_fits_loss(default_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = yaml.safe_load((default_run / "metrics.json").read_text())
    best, last = (str(default_run.parents[2] / m[k]) for k in ("best_checkpoint", "last_checkpoint"))
    validate = main(["validate", "--ckpt_path", best, "--trainer.enable_progress_bar=false"])
    assert validate.trainer.callback_metrics["val/loss"].item() == pytest.approx(m["best_loss"], rel=1e-6)
    test = main(["test", "--ckpt_path", last, "--trainer.enable_progress_bar=false"])
    assert test.trainer.callback_metrics["test/loss"].item() == pytest.approx(m["val_loss"], rel=1e-5)
    assert test.trainer.callback_metrics["test/R2Score"].item() > 0.5


def test_saved_config_reproduces_the_run(default_run, cli):
    again = cli("--config", str(default_run / "config.yaml"))
    assert same_numbers(again.metrics, yaml.safe_load((default_run / "metrics.json").read_text()))


def test_print_config_fed_back_gives_the_same_numbers(cli, capsys, tmp_path):
    options = ["--model.optimizer", "Adam", "--model.optimizer.lr", "0.1", "--trainer.max_epochs", "30"]
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *options, "--print_config"])
    assert exit_.value.code == 0
    config = tmp_path / "adam.yaml"
    config.write_text(capsys.readouterr().out)
    from_flags, from_config = cli(*options), cli("--config", str(config))
    assert same_numbers(from_flags.metrics, from_config.metrics)
    assert yaml.safe_load((from_config.path / "hparams.yaml").read_text())["optimizer"]["class_path"].endswith("Adam")
    assert from_config.path.parent.name == "adam"  # the run is named by its config file


def test_name_names_the_run_and_its_config_repeats_and_resumes_under_that_name(cli, tmp_path):
    first = cli("--name", "5_14_A", "--trainer.max_epochs", "3")
    assert first.path == tmp_path / "lightning_logs" / "5_14_A" / "version_0"
    config = first.path / "config.yaml"
    assert yaml.safe_load(config.read_text())["name"] == "5_14_A"
    (tmp_path / "copy.yaml").write_text(config.read_text())
    assert cli("--config", "copy.yaml").path == first.path.parent / "version_1"  # its config, anywhere: its name
    last = first.path / "checkpoints" / "last.ckpt"
    main(["fit", "--config", str(config), "--ckpt_path", str(last), "--trainer.max_epochs", "5"])
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["version_0", "version_1"]  # resumed in place
    assert first.metrics["epochs"] == 5
    split = cli(
        "--config", str(ROOT / "configs" / "book" / "05_split.yaml"), "--name", "split", "--trainer.max_epochs", "2"
    )
    assert split.path.parent.name == "split"  # over the config file's name


@pytest.mark.parametrize(
    "bad",
    [
        ["--model.optimizer.lr", "1e39"],
        ["--trainer.fast_dev_run", "true"],
        ["--data.split_seed", "99999999999999999999999"],
        ["--trainer.limit_val_batches", "0"],
    ],
)
def test_print_config_refuses_what_fit_would_refuse(bad, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *bad, "--print_config"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "source"),
    [
        ("checkpoint.monitor", "data.val_fraction"),
        ("early_stopping.monitor", "data.val_fraction"),
        ("model.n_inputs", "data.input_columns"),
    ],
)
def test_an_option_set_from_another_says_which(option, source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([f"--{option}", "3"])
    assert exit_.value.code == 2
    said = capsys.readouterr().err.splitlines()[0]
    assert said.startswith(f"error: --{option} is set from --{source}") and "leave it out" in said
    if option.endswith("monitor"):  # and how to watch a metric: a callback of one's own
        assert said.endswith("--trainer.callbacks.monitor val/<Metric>.")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("--trainer.max_epoch", "--trainer.max_epochs"), ("--data.val_fractin", "--data.val_fraction"), ("--zzz", None)],
)
def test_a_misspelt_option_is_told_the_one_it_resembles(typo, meant, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([typo, "5"])
    assert exit_.value.code == 2
    said = capsys.readouterr().err.splitlines()[0]
    assert said.startswith(f"error: unrecognized arguments: {typo} 5")
    assert said.endswith(f". Did you mean {meant}?") if meant else "Did you mean" not in said


def test_overrides_change_what_is_learned(cli):
    short = cli("--trainer.max_epochs", "5")
    assert short.metrics["epochs"] == 5
    assert short.metrics["stop_reason"] == "max_epochs=5 reached"
    assert abs(short.metrics["train_loss"] - short.metrics["closed_form"]["train_loss"]) > 0.1
    everything = cli("--config", str(ROOT / "configs" / "all_readings.yaml"), "--early_stopping.patience", "3")
    m = everything.metrics
    assert m["monitor"] == "train/loss" and m["val_loss"] is None
    assert m["closed_form"]["weight"][0] == pytest.approx(0.5367719, abs=1e-6)
    assert m["weight"][0] == pytest.approx(0.5367719, rel=1e-3)
    assert "val/loss" not in events(everything.path).Tags()["scalars"]
    assert everything.path.parent.name == "all_readings"
    with pytest.raises(SystemExit) as exit_:  # nothing was held out, so there is nothing to validate on
        main(["validate", "--ckpt_path", str(everything.path / "checkpoints" / "last.ckpt")])
    assert exit_.value.code == 2


def test_a_run_without_an_epoch_limit_says_its_time_limit_stopped_it(cli, capsys):
    run = cli("--trainer.max_time", "00:00:00:01", "--trainer.max_epochs", "-1", "--early_stopping.patience", "99999")
    assert run.metrics["stop_reason"].startswith("max_time reached after ")
    assert "epochs: max_time reached after " in capsys.readouterr().out


def test_another_optimizer_without_an_lr_takes_its_own_default(cli):
    m = cli("--model.optimizer", "Adam", "--trainer.max_epochs", "2").metrics  # not the 0.2 set for SGD
    assert m["hparams"]["optimizer"] == "Adam" and m["hparams"]["optimizer.lr"] == pytest.approx(0.001)


def test_own_csv_with_two_inputs_matches_lstsq(cli, tmp_path):
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 200, generator=generator, dtype=torch.float64) * 100
    y = 0.5 * a - 0.25 * b + 7 + torch.randn(200, generator=generator, dtype=torch.float64)
    csv = tmp_path / "sensors.csv"
    csv.write_text(
        "a,b,y\n" + "\n".join(f"{i},{j},{k}" for i, j, k in zip(a.tolist(), b.tolist(), y.tolist(), strict=True))
    )
    run = cli("--data.csv_path", str(csv), "--data.input_columns", "[a, b]", "--data.target_column", "y")
    m = run.metrics
    assert m["features"] == ["a", "b"]
    assert m["weight"] == pytest.approx(m["closed_form"]["weight"], rel=1e-3)
    assert m["bias"] == pytest.approx(m["closed_form"]["bias"], abs=1e-2)
    assert m["closed_form"]["weight"] == pytest.approx([0.5, -0.25], abs=0.01)
    assert {"weights/weight/a", "weights/weight/b", "weights/bias"} <= set(events(run.path).Tags()["scalars"])


def script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_script_from_another_directory_fits_with_a_clean_console(tmp_path):
    done = script("--trainer.max_epochs", "3", "--trainer.enable_progress_bar=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lightning_logs" / "default" / "version_0" / "metrics.json").is_file()
    assert "Learned:      t_c = " in done.stdout
    assert "tensorboard --logdir lightning_logs" in done.stdout
    console = done.stdout + done.stderr
    for noise in ("Warning", "warn", "Tip", "Traceback"):
        assert noise not in console


@pytest.mark.parametrize(("script_name", "stop"), [("train.py", signal.SIGTERM), ("sweep.py", signal.SIGINT)])
def test_a_signal_while_a_script_imports_is_one_line(script_name, stop, tmp_path):
    # The first seconds of a script are imports (torch, Lightning): a signal then still gets its one line.
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / script_name)], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    time.sleep(random.Random(script_name).uniform(0.2, 0.8))
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + stop, err
    assert err.strip().startswith("Interrupted before") and err.strip().endswith("nothing was written."), err
    assert list(tmp_path.iterdir()) == []


def test_the_numbers_a_sweep_can_optimize_are_numbers_of_metrics_json(default_run):
    m = Run(default_run).metrics
    assert all(isinstance(m[key], int | float) for key in NUMBERS)
