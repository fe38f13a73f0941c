"""Interrupted runs resume where they stopped and end exactly as uninterrupted ones: Ctrl-C, SIGTERM and kill -9."""

import json
import random
import shlex
import shutil
import signal
import time
from pathlib import Path

import PIL.Image
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.conftest import Run, Script, train_script
from thermometer.cli import main

ROOT = Path(__file__).parents[1]


def numbers(m: dict) -> list[float]:
    """What a run learned and how it ended, as one list."""
    ended = [m["bias"], m["train_loss"], m["val_loss"] or 0.0, m["epochs"], m["best_loss"], m["best_epoch"]]
    return [*m["weight"], *ended, *m["trained"]["weight"], m["trained"]["bias"]]


def start(args: list[str], cwd: Path) -> Script:
    """`python scripts/train.py args` in `cwd`, in a process of its own (forked from one that imported it)."""
    return train_script(args, cwd)


def wait_for(path: Path, process: Script) -> None:
    """Until `path` exists (the run has reached that point), or fail if the run ended first."""
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def resume(command: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run the printed resume command in-process and return the run's metrics."""
    args = shlex.split(command)[2:]  # after `python scripts/train.py`
    monkeypatch.chdir(cwd)
    main([*args, "--trainer.enable_progress_bar=false"])
    [metrics] = (cwd / "lightning_logs").glob("*/version_0/metrics.json")
    return json.loads(metrics.read_text())


@pytest.mark.parametrize(
    ("config", "epochs", "stop", "options"),
    [
        ("04_adam", 300, signal.SIGINT, []),
        ("05_split", 300, signal.SIGTERM, []),  # the reference of test_promises' signals at random moments
        ("05_split", 100, signal.SIGINT, ["--data.batch_size", "2"]),  # shuffled: the same batches after resuming
    ],
    ids=["adam-ctrl-c", "sgd-sigterm", "sgd-mini-batches-ctrl-c"],
)
def test_a_signal_stops_at_an_epoch_boundary_and_the_printed_command_resumes_exactly(
    config, epochs, stop, options, finished_run, tmp_path, monkeypatch
):
    book = str(ROOT / "configs" / "book" / f"{config}.yaml")
    args = ["--config", book, "--trainer.max_epochs", str(epochs), *options]
    reference = Run(finished_run(*args)).metrics

    (tmp_path / "stopped").mkdir()
    # best.ckpt is then written at the first improvement 0.5 s after the run began; start-up takes longer, so at
    # the end of the first epoch: the signal comes in mid-training, however fast the epochs are.
    run = start([*args, "--checkpoint.write_every", "0.5", "--trainer.enable_progress_bar=false"], tmp_path / "stopped")
    run_dir = tmp_path / "stopped" / "lightning_logs" / config / "version_0"
    wait_for(run_dir / "checkpoints" / "best.ckpt", run)
    run.send_signal(stop)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 128 + stop, err
    assert "Traceback" not in err and f"{stop.name}: stopping at the end of this epoch" in err
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["interrupted"] == stop.name and stopped["stop_reason"] == f"interrupted by {stop.name}"
    assert 0 < stopped["epochs"] < epochs
    [command] = [line.split(maxsplit=1)[1].split("   ")[0] for line in out.splitlines() if line.startswith("Resume:")]

    resumed = resume(command, tmp_path / "stopped", monkeypatch)
    assert [p.relative_to(tmp_path / "stopped") for p in (tmp_path / "stopped").glob("lightning_logs/*/*")] == [
        run_dir.relative_to(tmp_path / "stopped")
    ]
    assert numbers(resumed) == pytest.approx(numbers(reference), rel=1e-6)


def whole(run_dir: Path) -> None:
    """Each file under its own name is whole (a write in progress is a hidden temporary file)."""
    yaml.safe_load((run_dir / "config.yaml").read_text())
    for checkpoint in run_dir.glob("checkpoints/*.ckpt"):
        torch.load(checkpoint, weights_only=True)
    for figure in run_dir.glob("*.png"):
        PIL.Image.open(figure).verify()


@pytest.mark.parametrize("seed", [4, 6])
def test_kill_9_at_a_random_moment_of_start_up_leaves_whole_files(seed, tmp_path):
    args = ["--config", str(ROOT / "configs" / "book" / "05_split.yaml"), "--trainer.max_epochs", "300"]
    run = start([*args, "--checkpoint.write_every", "0.2"], tmp_path)
    run_dir = tmp_path / "lightning_logs" / "05_split" / "version_0"
    wait_for(run_dir / "config.yaml", run)
    time.sleep(random.Random(seed).uniform(0, 0.6))  # the sanity check, the first figures and checkpoints
    run.kill()
    run.communicate(timeout=60)
    whole(run_dir)


@pytest.mark.parametrize("seed", [5, 7])
def test_kill_9_in_training_leaves_a_last_checkpoint_that_resumes_exactly(seed, finished_run, tmp_path, monkeypatch):
    args = ["--config", str(ROOT / "configs" / "book" / "05_split.yaml"), "--trainer.max_epochs", "300"]
    reference = Run(finished_run(*args)).metrics
    (tmp_path / "killed").mkdir()
    run = start([*args, "--checkpoint.write_every", "0.2"], tmp_path / "killed")
    run_dir = tmp_path / "killed" / "lightning_logs" / "05_split" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    # The first periodic last.ckpt comes 0.2 s into training, and 300 epochs take seconds: the kill comes in
    # between, a checkpoint to resume from behind it and epochs still to train.
    wait_for(last, run)
    time.sleep(random.Random(seed).uniform(0, 0.3))
    run.kill()
    run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL and not (run_dir / "metrics.json").exists()
    whole(run_dir)
    command = f"python scripts/train.py fit --config {run_dir / 'config.yaml'} --ckpt_path {last}"
    assert numbers(resume(command, tmp_path / "killed", monkeypatch)) == pytest.approx(numbers(reference), rel=1e-6)


def test_a_run_from_python_leaves_the_signal_handlers_as_it_found_them(cli):
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    run = cli("--trainer.max_epochs", "3")
    assert {signum: signal.getsignal(signum) for signum in before} == before  # not Lightning's, nor ours
    main(["validate", "--ckpt_path", str(run.path / "checkpoints" / "best.ckpt")])
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_a_resume_from_another_directory_continues_in_the_runs_own_files(tmp_path, monkeypatch):
    split = ["--config", str(ROOT / "configs" / "book" / "05_split.yaml")]
    (tmp_path / "first").mkdir(), (tmp_path / "elsewhere").mkdir(), (tmp_path / "straight").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    main([*split, "--trainer.max_epochs", "30", "--trainer.enable_progress_bar=false"])
    run_dir = tmp_path / "first" / "lightning_logs" / "05_split" / "version_0"
    shutil.copytree(tmp_path / "first", tmp_path / "copied")  # a run moved to another disk or machine
    monkeypatch.chdir(tmp_path / "elsewhere")
    config, last = run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt"
    main(["fit", "--config", str(config), "--ckpt_path", str(last), "--trainer.max_epochs", "60"])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # no -v1 files
    assert torch.load(last, weights_only=True)["epoch"] == 60  # the resume's epochs went into the run's last.ckpt
    assert not (tmp_path / "elsewhere" / "lightning_logs").exists()
    monkeypatch.chdir(tmp_path / "straight")
    main([*split, "--trainer.max_epochs", "60", "--trainer.enable_progress_bar=false"])
    straight = json.loads((tmp_path / "straight" / "lightning_logs/05_split/version_0/metrics.json").read_text())
    assert numbers(json.loads((run_dir / "metrics.json").read_text())) == pytest.approx(numbers(straight), rel=1e-6)
    # The copy resumes in its own files, its best checkpoint and scores carried over, as the original did.
    copied = tmp_path / "copied" / "lightning_logs" / "05_split" / "version_0"
    monkeypatch.chdir(tmp_path / "copied")
    resume = ["fit", "--config", str(copied / "config.yaml"), "--ckpt_path", str(copied / "checkpoints" / "last.ckpt")]
    main([*resume, "--trainer.max_epochs", "60"])
    assert sorted(p.name for p in (copied / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    metrics = json.loads((copied / "metrics.json").read_text())
    assert numbers(metrics) == pytest.approx(numbers(straight), rel=1e-6)
    assert metrics["best_checkpoint"] == "lightning_logs/05_split/version_0/checkpoints/best.ckpt"


def test_a_resume_on_readings_whose_values_changed_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    readings = (ROOT / "src" / "thermometer" / "readings.csv").read_text()
    (tmp_path / "mine.csv").write_text(readings)
    main(["--data.csv_path", "mine.csv", "--trainer.max_epochs", "5", "--trainer.enable_progress_bar=false"])
    run_dir = tmp_path / "lightning_logs" / "default" / "version_0"
    (tmp_path / "mine.csv").write_text(readings.replace(",0.5\n", ",0.7\n"))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    resume = ["fit", "--config", str(run_dir / "config.yaml"), "--ckpt_path", str(run_dir / "checkpoints/last.ckpt")]
    with pytest.raises(SystemExit) as refused:
        main([*resume, "--trainer.max_epochs", "10"])
    assert refused.value.code == 2
    [message] = capsys.readouterr().err.strip().splitlines()
    assert "mine.csv: its training rows are not those the checkpoint was trained on" in message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_resume_writes_no_hyperparameters_of_its_own(cli):
    """TensorBoard's HParams tab keeps the run's first session: the resume adds none, and nobody writes hp_metric."""
    run = cli("--trainer.max_epochs", "5").path
    config, last = run / "config.yaml", run / "checkpoints" / "last.ckpt"
    resumed = ["--trainer.max_epochs", "8", "--model.optimizer.lr", "0.1", "--trainer.enable_progress_bar=false"]
    main(["fit", "--config", str(config), "--ckpt_path", str(last), *resumed])
    files = sorted(run.glob("events.out.tfevents.*"))
    assert len(files) == 2  # the first start's and the resume's
    sessions, tags = [], set()
    for file in files:
        for event in EventFileLoader(str(file)).Load():
            for value in event.summary.value:
                tags.add(value.tag)
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    sessions.append((file, data.WhichOneof("data"), data.session_start_info.hparams))
    [(file, kind, hparams)] = sessions
    assert file == files[0] and kind == "session_start_info"
    assert hparams["optimizer.lr"].number_value == 0.2  # the first start's choice, not the resume's 0.1
    assert "hp_metric" not in tags and not any(tag.startswith("_hparams_/experiment") for tag in tags)
