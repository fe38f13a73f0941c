"""scripts/sweep.py: an Optuna study whose trials are ordinary runs; it resumes, it is shared, it prunes."""

import json
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.conftest import Script, sweep_script
from thermometer.cli import main as train
from thermometer.sweep import main as sweep
from thermometer.sweep.figure import sweep_figure

ROOT = Path(__file__).parents[1]
SHORT = ["--trainer.max_epochs", "40", "--figures.every_n_epochs", "40"]


def sweep_file(directory: Path, space: dict, **settings) -> Path:
    """A sweep file in `directory`: the default run for `SHORT` epochs over `space`."""
    path = directory / "lrs.yaml"
    path.write_text(yaml.safe_dump({"args": SHORT, "space": space, **settings}))
    return path


def study(directory: Path, name: str = "lrs") -> optuna.Study:
    url = f"sqlite:///{directory}/lightning_logs/{name}/optuna.db"
    return optuna.load_study(study_name=name, storage=url)


def finished(directory: Path) -> list[optuna.trial.FrozenTrial]:
    return study(directory).get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def test_a_sweep_of_a_few_trials_leaves_ordinary_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # The objective may be any number of metrics.json: a metric's too.
    objective = "val/MeanAbsoluteError"
    sweep(["--config", str(sweep_file(tmp_path, {"model.optimizer.lr": [0.05, 0.2]}, objective=objective))])
    trials = finished(tmp_path)
    assert sorted(t.params["model.optimizer.lr"] for t in trials) == [0.05, 0.2]
    printed = capsys.readouterr().out
    for trial in trials:
        run = Path(trial.user_attrs["run"])
        assert run.parent == Path("lightning_logs/lrs") and f"({run})" in printed
        metrics = json.loads((run / "metrics.json").read_text())
        assert trial.value == metrics[objective] and metrics["epochs"] == 40
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["model"]["optimizer"]["init_args"]["lr"] == trial.params["model.optimizer.lr"]
        # What TensorBoard's HParams tab compares: each run's session with its choices.
        [events] = run.glob("events.out.tfevents.*")
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        assert "train/loss" in accumulator.Tags()["scalars"]
        content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        assert hparams["optimizer.lr"].number_value == trial.params["model.optimizer.lr"]
        # An ordinary run: its config.yaml alone gives the same numbers again.
        again = train(["--config", str(run / "config.yaml"), "--trainer.enable_progress_bar=false"])
        repeat = json.loads((Path(again.trainer.logger.log_dir) / "metrics.json").read_text())
        assert repeat["train_loss"] == metrics["train_loss"]
    # The best trial, named at the end with the command that repeats it from here.
    best = min(trials, key=lambda t: t.value)
    assert f"Best trial:   {best.number}, {objective} {best.value:.6g}, run {best.user_attrs['run']}\n" in printed
    assert repeated(printed, objective) == best.value


def repeated(printed: str, objective: str = "train_loss") -> float:
    """Run the sweep's printed `Repeat it:` command here, in-process: the objective its run reached."""
    [line] = [line for line in printed.splitlines() if line.startswith("Repeat it:")]
    command = shlex.split(line.removeprefix("Repeat it:"))
    assert command[:2] == ["python", "scripts/train.py"]
    cli = train([*command[2:], "--trainer.enable_progress_bar=false"])
    return json.loads((Path(cli.trainer.logger.log_dir) / "metrics.json").read_text())[objective]


def test_pruning_stops_a_diverging_trial_and_a_hopeless_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = ["--data.val_fraction", "0", "--model.normalize", "none", "--trainer.max_epochs", "3000"]
    over = {"model.optimizer.lr": [1.1 * 3.3994e-4]}  # 10 % past 2/λ_max: inf only after hundreds of epochs
    path = tmp_path / "diverge.yaml"
    path.write_text(yaml.safe_dump({"args": [*raw, "--early_stopping.patience", "3000"], "space": over}))
    sweep(["--config", str(path)])
    [trial] = study(tmp_path, "diverge").trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    metrics = json.loads((Path(trial.user_attrs["run"]) / "metrics.json").read_text())
    assert metrics["epochs"] < 100 and metrics["stop_reason"].startswith("diverged: train/loss rose from")
    assert "below its limit 2/λ_max = 0.0003399" in metrics["diverged"]

    # A pruner: once one trial has finished, a much slower one is dropped as soon as it falls behind.
    pruner = {"name": "MedianPruner", "n_startup_trials": 1, "n_warmup_steps": 5}
    sweep(["--config", str(sweep_file(tmp_path, {"model.optimizer.lr": [0.2]}, pruner=pruner))])
    sweep(["--config", str(sweep_file(tmp_path, {"model.optimizer.lr": [1e-4]}, pruner=pruner))])
    first, slow = study(tmp_path).trials
    assert first.state == optuna.trial.TrialState.COMPLETE and slow.state == optuna.trial.TrialState.PRUNED
    metrics = json.loads((Path(slow.user_attrs["run"]) / "metrics.json").read_text())
    assert metrics["stop_reason"] == f"pruned at epoch {metrics['epochs']} by MedianPruner: val/loss " + (
        f"{slow.intermediate_values[metrics['epochs']]:.4g}"
    )
    assert metrics["epochs"] == 5  # as soon as the warm-up (n_warmup_steps) is over


def start_sweep(directory: Path, path: Path) -> Script:
    """`python scripts/sweep.py --config path` in `directory`, in a process of its own."""
    return sweep_script(["--config", str(path)], directory)


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_stopped_sweep_resumes_without_repeating_finished_trials(tmp_path):
    path = sweep_file(tmp_path, {"model.optimizer.lr": [0.05, 0.1, 0.2]})
    path.write_text(path.read_text().replace("'40'", "'200'"))  # long enough trials to stop one halfway
    worker = start_sweep(tmp_path, path)
    database = tmp_path / "lightning_logs" / "lrs" / "optuna.db"
    # A trial's metrics.json, read from the disk: polling the study's SQLite file would compete for its lock.
    wait_for(lambda: any(database.parent.glob("version_*/metrics.json")))
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 130, err
    assert (
        err.strip().splitlines()[-1] == "Sweep stopped; the same command resumes it, without repeating finished trials."
    )
    before = {t.number: t.params for t in finished(tmp_path)}
    assert 1 <= len(before) < 3

    worker = start_sweep(tmp_path, path)
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    trials = finished(tmp_path)
    assert sorted(t.params["model.optimizer.lr"] for t in trials) == [0.05, 0.1, 0.2]  # each once
    assert {t.number: t.params for t in trials if t.number in before} == before
    assert f"{3 - len(before)} of 3 trials to run" in out


@pytest.mark.parametrize(
    ("seed", "stop"),
    [(1, signal.SIGTERM), (2, signal.SIGINT), (3, signal.SIGTERM)],
)
def test_a_signal_as_a_trial_starts_stops_the_sweep_at_the_trial_s_first_epoch(seed, stop, tmp_path):
    # Trials of 3000 epochs: one that ran to its end after the signal would take all of them.
    args = ["--trainer.max_epochs", "3000", "--early_stopping.patience", "3000", "--figures.every_n_epochs", "3000"]
    path = tmp_path / "lrs.yaml"
    path.write_text(yaml.safe_dump({"args": args, "space": {"model.optimizer.lr": [0.05]}}))
    worker = start_sweep(tmp_path, path)
    # From the moment the study is open: its trial starts, parses its options, sets up, trains.
    wait_for(lambda: (tmp_path / "lightning_logs" / "lrs" / "optuna.db").exists() or worker.poll() is not None)
    time.sleep(random.Random(seed).uniform(0, 1.0))
    worker.send_signal(stop)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 128 + stop, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("Sweep stopped; the same command resumes it"), err
    for run in (tmp_path / "lightning_logs" / "lrs").glob("version_*"):
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["interrupted"] == stop.name and metrics["epochs"] < 1000, metrics["stop_reason"]
    assert not finished(tmp_path)


def test_two_workers_on_one_study_finish_it_together(tmp_path):
    lrs = [0.05, 0.1, 0.2, 0.3]
    path = sweep_file(tmp_path, {"model.optimizer.lr": lrs})
    path.write_text(path.read_text().replace("'40'", "'100'"))
    (tmp_path / "lightning_logs" / "lrs").mkdir(parents=True)
    workers = [start_sweep(tmp_path, path) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = finished(tmp_path)
    assert sorted(t.params["model.optimizer.lr"] for t in trials) == lrs  # every point once, none twice
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both took trials
    runs = {t.user_attrs["run"] for t in trials}
    assert len(runs) == 4 and all((Path(tmp_path, run) / "metrics.json").is_file() for run in runs)


def test_two_workers_of_a_sampler_draw_different_points_and_one_worker_the_same_each_time(tmp_path, monkeypatch):
    space = {"model.optimizer.lr": {"low": 0.01, "high": 0.5, "log": True}}
    tiny = ["--trainer.max_epochs", "3", "--figures.every_n_epochs", "3"]

    def tiny_sweep(directory: Path, **settings) -> Path:
        path = directory / "lrs.yaml"
        path.write_text(yaml.safe_dump({"args": tiny, "space": space, "sampler": "TPESampler", **settings}))
        return path

    path = tiny_sweep(tmp_path, trials=3)
    (tmp_path / "lightning_logs" / "lrs").mkdir(parents=True)
    workers = [start_sweep(tmp_path, path) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    drawn = [t.params["model.optimizer.lr"] for t in finished(tmp_path)]
    assert len(drawn) >= 3 and len(set(drawn)) == len(drawn), drawn

    # One worker alone draws the same points each time with the same seed.
    points = []
    for seed in (7, 7):
        alone = tmp_path / f"alone-{len(points)}"
        alone.mkdir()
        monkeypatch.chdir(alone)
        sweep(["--config", str(tiny_sweep(alone, trials=2, seed=seed))])
        points.append([t.params["model.optimizer.lr"] for t in finished(alone)])
    assert points[0] == points[1]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"space": {}}, "sweep space: empty"),
        ({"space": {"model.optimizer.lr": "fast"}}, "sweep space model.optimizer.lr: 'fast'"),
        ({"space": {"model.optimizer.lr": [0.1]}, "sampler": "Nope"}, "Nope: not a class of optuna.samplers"),
        ({"space": {"model.optimizer.lr": [0.1]}, "sampler": "TPESampler"}, "give the number of trials"),
        (
            {"space": {"model.optimizer.lr": [0.1]}, "sampler": "PartialFixedSampler", "trials": 2},
            "sampler PartialFixedSampler: ",
        ),
        (
            {"space": {"model.optimizer.lrr": [0.1]}},
            "the trials' options: --model.optimizer.lrr: torch.optim.SGD has no",
        ),
        ({"space": {"model.optimizer.lr": [1e39]}}, "--model.optimizer.lr 1e+39: beyond float32"),
        (
            {"args": ["--config", "nope.yaml"], "space": {"model.optimizer.lr": [0.1]}},
            "/nope.yaml: no such file",  # looked for beside the sweep file
        ),
        ({"space": {"model.optimizer.lr": {"low": 0, "high": 1, "num": 3, "log": True}}}, "a log range above 0"),
        (
            {"space": {"model.optimizer.lr": {"low": 0.5, "high": 0.1}}, "sampler": "TPESampler", "trials": 2},
            "`low <= high` must hold",
        ),
        ({"space": {"data.val_fraction": [0.2, 0.95]}}, "11 rows leave 1 for training with val_fraction 0.95"),
        ({"space": {"model.optimizer.lr": [0.1]}, "pruner": {"name": "MedianPruner", "foo": 1}}, "argument 'foo'"),
        ({"space": {"model.optimizer.lr": [0.1]}, "figure": {"x": "lr", "by": "model.optimizer.lr"}}, "x is 'lr'"),
        ({"space": {"model.optimizer.lr": [0.1]}, "storage": "foo://x"}, "--storage foo://x: Can't load plugin"),
        ({"space": {"model.optimizer.lr": [0.1]}, "storage": "sqlite://"}, "--storage sqlite://: a database in memory"),
        (
            {"space": {"model.optimizer.lr": {"low": 0.1, "high": 1, "step": 5}}, "sampler": "TPESampler", "trials": 2},
            "the step does not divide the range from low to high",
        ),
        ({"space": {"model.optimizer.lr": [0.1]}, "objective": "foo"}, "objective foo: not a number of metrics.json"),
        (  # a metric the trials do not log
            {"space": {"model.optimizer.lr": [0.1]}, "objective": "val/MeanSquaredError"},
            "objective val/MeanSquaredError: metrics.json has no number by that name, at --model.optimizer.lr 0.1; "
            "metrics.json has train_loss, val_loss",
        ),
        (
            {"args": ["--data.val_fraction", "0"], "space": {"model.optimizer.lr": [0.1]}, "objective": "val/R2Score"},
            "objective val/R2Score: the trials hold out no validation rows",
        ),
        (
            {"args": ["--data.val_fraction", "0"], "space": {"model.optimizer.lr": [0.1]}, "objective": "val_loss"},
            "objective val_loss: the trials hold out no validation rows",
        ),
        (  # some of them: the trials at 0 would have no val_loss to give
            {"space": {"data.val_fraction": [0, 0.2]}, "objective": "val_loss"},
            "objective val_loss: the trials hold out no validation rows, at --data.val_fraction 0",
        ),
        (  # a number that the trials' net or optimizer never has, known without training
            {"args": ["--model.net", "MLP"], "space": {"model.optimizer.lr": [0.1]}, "objective": "bias"},
            "objective bias: MLP is not linear in its parameters (it has no features method)",
        ),
        (
            {"space": {"model.net": ["Line", "MLP"]}, "objective": "bias"},
            "objective bias: MLP is not linear in its parameters (it has no features method), at --model.net MLP",
        ),
        (
            {"space": {"model.optimizer": ["SGD", "Adam"]}, "objective": "stable_lr"},
            "objective stable_lr: known only for plain SGD with one batch an epoch",
        ),
        # Distributed trials: a sweep runs each trial in one process, and says how to use several GPUs.
        (
            {"args": ["--config", str(ROOT / "configs/presets/ddp.yaml")], "space": {"model.optimizer.lr": [0.1]}},
            "the trials' options run DDP on 2 processes; a sweep runs each trial in one. To sweep on several GPUs",
        ),
        ({"space": {"trainer.devices": [1, 3]}}, "the trials' options run DDP on 3 processes"),
        (
            {"args": ["--trainer.strategy", "ddp"], "space": {"model.optimizer.lr": [0.1]}},
            "the trials' options run DDP on 1 process;",
        ),
        # A resume: every trial would continue the one run.
        (
            {"args": ["--ckpt_path", "last.ckpt"], "space": {"model.optimizer.lr": [0.1]}},
            "the trials' options: --ckpt_path: every trial would continue that one run",
        ),
        (
            {"args": ["--config", "resume.yaml"], "space": {"model.optimizer.lr": [0.1]}},
            "the trials' options: --ckpt_path: every trial would continue that one run",
        ),
        ({"space": {"ckpt_path": ["a.ckpt"]}}, "the trials' options: --ckpt_path: every trial"),
        # Found by generating sweep files (below): each was a traceback, or came only after the study was written.
        ({"space": {"model.optimizer.lr": [0.1]}, "storage": "sqlite:///."}, "--storage sqlite:///.: . is a directory"),
        ({"space": {"model.optimizer.lr": [0.1]}, "seed": -1}, "seed: -1; give a whole number from 0 to 4294967295"),
        ({"space": {"model.optimizer.lr": {"low": 0.1, "high": 1, "num": 10**9}}}, "num is a whole number from 1"),
        ({"space": {"model.optimizer.lr": {"low": "x", "high": 1, "num": 2}}}, "low and high are numbers"),
        ({"space": {"model.net": [{"class_path": "MLP"}]}}, "each value is a number, a word, true, false or null"),
        (
            {"space": {"model.optimizer.lr": [0.1]}, "figure": {"x": "model.optimizer.lr", "by": ["a"]}},
            "figure: by is ['a'], not an option",
        ),
        (
            {
                "space": {"model.optimizer.lr": [0.1]},
                "figure": {"x": "model.optimizer.lr", "by": "model.optimizer.lr", "labels": 3},
            },
            "figure: labels is 3",
        ),
        ({"space": {"model.optimizer.lr": [0.1]}, "sampler": "TPESampler", "trials": 0}, "trials: 0; give 1 or more"),
        ({"space": {"model.optimizer.lr": [0.1]}, "pruner": {"name": 3}}, "pruner 3: not a class of optuna.pruners"),
        ({"args": ["validate"], "space": {"model.optimizer.lr": [0.1]}}, "validate: a trial trains (fit)"),
        ({"args": ["--help"], "space": {"model.optimizer.lr": [0.1]}}, "--help: a trial trains"),
        ({"space": {"model.net.degree": [2, 100]}, "args": ["--model.net", "Polynomial"]}, "degree is 100"),
    ],
)
def test_a_mistake_in_a_sweep_is_one_line_and_status_2(tmp_path, monkeypatch, capsys, settings, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resume.yaml").write_text("ckpt_path: last.ckpt\n")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"args": SHORT, **settings}))
    with pytest.raises(SystemExit) as exit_:
        sweep(["--config", str(path)])
    assert exit_.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "lightning_logs").exists()  # checked before any trial: no run, no study


LR = "space: {model.optimizer.lr: [0.1]}\n"


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (LR + "foo: 1\n", [], "foo: not a setting of a sweep file; its settings are space, args, sampler"),
        (None, [], "--config bad.yaml: no such file"),
        ("", [], "--config bad.yaml: empty"),
        ("- 1\n", [], "--config bad.yaml: a YAML list"),
        ("[1, 2\n", [], "--config bad.yaml: not valid YAML (line 2, column 1"),
        (LR + "trials: abc\n", [], "trials: abc: expected a whole number"),
        ("space: [1, 2]\n", [], "space: [1, 2]: expected a mapping of options to values"),
        (
            LR + "args: [--trainer.max_epochs, 40]\n",
            [],
            "args: 40: expected a list of the trials' options, numbers quoted",
        ),
        (LR + "figure: 3\n", [], "figure: 3: expected a mapping such as {x: model.optimizer.lr"),
        ("args: []\n", [], "space: missing; give a mapping of options to values"),
        (LR, ["--nope", "1"], "--nope: not an option of sweep.py"),
        (LR, ["--trials", "x"], "trials: x: expected a whole number"),
    ],
)
def test_a_mistake_in_a_sweep_file_is_one_line_without_usage_or_tip(
    tmp_path, monkeypatch, capsys, content, options, message
):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(SystemExit) as exit_:
        sweep(["--config", "bad.yaml", *options])
    assert exit_.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    assert list(tmp_path.iterdir()) == ([tmp_path / "bad.yaml"] if content is not None else [])


def test_check_checks_a_sweep_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = sweep_file(tmp_path, {"model.optimizer.lr": [0.05, 0.1, 0.2]})
    assert sweep(["--config", str(path), "--check"]) is None
    assert "Sweep lrs: checked, 3 trials" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [path]


def test_a_sampler_draws_from_a_log_range(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = {"model.optimizer.lr": {"low": 0.01, "high": 0.5, "log": True}}
    sweep(["--config", str(sweep_file(tmp_path, space, sampler="TPESampler", trials=2))])
    assert all(0.01 <= t.params["model.optimizer.lr"] <= 0.5 for t in finished(tmp_path))
    assert len(finished(tmp_path)) == 2


def test_the_learning_rate_sweep_config_runs_with_its_figure(tmp_path, monkeypatch):
    """configs/sweeps/learning_rate.yaml, shrunk to two rates on each side of raw t_u's limit, 100 epochs.

    Beside a copy of configs/, run from another directory: its `--config ../book/01_diverge.yaml` is the file's.
    """
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    path = tmp_path / "configs" / "sweeps" / "learning_rate.yaml"
    chapter = yaml.safe_load(path.read_text())
    chapter["args"] = [a.replace("1000", "100") for a in chapter["args"]]
    chapter["space"] = {"model.normalize": ["none"], "model.optimizer.lr": [1e-4, 1e-3]}
    path.write_text(yaml.safe_dump(chapter))
    sweep(["--config", str(path)])
    below, above = sorted(study(tmp_path, "learning_rate").trials, key=lambda t: t.params["model.optimizer.lr"])
    assert below.state.name == "COMPLETE" and above.state.name == "PRUNED" and above.user_attrs["diverged"]
    assert below.user_attrs["stable_lr"] == pytest.approx(3.3994e-4, rel=1e-4)
    assert (tmp_path / "lightning_logs" / "learning_rate" / "learning_rate.png").stat().st_size > 10_000
    [events] = (tmp_path / "lightning_logs" / "learning_rate" / "sweep").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert accumulator.Tags()["images"] == ["views/sweep"]  # after train/ and val/, which TensorBoard opens


def test_a_value_every_run_refuses_stops_the_sweep_before_any_trial_and_runs_once_fixed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = sweep_file(tmp_path, {"model.optimizer.lr": [0.1, 0.2]}, objective="train_loss")
    path.write_text(path.read_text().replace("'40'", "'-40'"))  # refused by every run, though it parses
    with pytest.raises(SystemExit) as exit_:
        sweep(["--config", str(path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "lightning_logs").exists() and not list(tmp_path.rglob("*.db"))  # no trial ran
    path.write_text(path.read_text().replace("'-40'", "'40'"))
    sweep(["--config", str(path)])
    assert sorted(t.params["model.optimizer.lr"] for t in finished(tmp_path)) == [0.1, 0.2]


def test_a_sweep_file_finds_its_files_from_its_own_directory(tmp_path, monkeypatch, capsys):
    """Run from elsewhere, a sweep file's `--config` and `--data.csv_path` are relative to the file, as in a config."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "sweeps").mkdir(parents=True)
    (project / "configs").mkdir()
    elsewhere.mkdir()
    (project / "configs" / "short.yaml").write_text(
        yaml.safe_dump({"trainer": {"max_epochs": 5}, "figures": {"every_n_epochs": 5}, "data": {"val_fraction": 0}})
    )
    # Readings on the line t_c = 2 t_u + 1, which no other CSV gives: the closed form says which file was read.
    (project / "sweeps" / "line.csv").write_text("t_u,t_c\n" + "".join(f"{t},{2 * t + 1}\n" for t in range(6)))
    args = ["--config", "../configs/short.yaml", "--data.csv_path=line.csv", "--early_stopping.patience", "5"]
    (project / "sweeps" / "tiny.yaml").write_text(
        yaml.safe_dump({"args": args, "space": {"model.optimizer.lr": [0.01, 0.02]}, "objective": "train_loss"})
    )
    monkeypatch.chdir(elsewhere)
    sweep(["--config", "../project/sweeps/tiny.yaml"])
    trials = study(elsewhere, "tiny").get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert repeated(capsys.readouterr().out) == min(t.value for t in trials)  # its files found from here too
    assert sorted(t.params["model.optimizer.lr"] for t in trials) == [0.01, 0.02]
    for trial in trials:
        metrics = json.loads((Path(trial.user_attrs["run"]) / "metrics.json").read_text())
        assert metrics["epochs"] == 5  # short.yaml's
        line = metrics["closed_form"]
        assert line["weight"] == pytest.approx([2.0]) and line["bias"] == pytest.approx(1.0)
        config = yaml.safe_load((Path(trial.user_attrs["run"]) / "config.yaml").read_text())
        assert Path(config["data"]["csv_path"]).resolve() == project / "sweeps" / "line.csv"


TINY_NET = """
from torch import nn


class TinyNet(nn.Linear):
    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__(n_inputs, 1)
"""


def test_a_sweep_from_the_shell_imports_a_net_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_nets.py").write_text(TINY_NET)
    args = ["--model.net", "my_nets.TinyNet", "--trainer.max_epochs", "3", "--figures.every_n_epochs", "3"]
    (tmp_path / "nets.yaml").write_text(yaml.safe_dump({"args": args, "space": {"model.optimizer.lr": [0.01]}}))
    monkeypatch.setattr(sys, "argv", ["sweep.py", "--config", "nets.yaml"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the sweep puts the working directory first
    try:
        sweep()
    finally:
        sys.modules.pop("my_nets", None)
    [trial] = study(tmp_path, "nets").trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert json.loads((Path(trial.user_attrs["run"]) / "metrics.json").read_text())["net"] == "my_nets.TinyNet"


def pruned_or_done(lr: float, value: float | None, diverged: bool = False) -> optuna.trial.FrozenTrial:
    """A finished trial of a learning-rate sweep on raw t_u, as the study keeps it."""
    state = optuna.trial.TrialState.PRUNED if diverged or value is None else optuna.trial.TrialState.COMPLETE
    return optuna.trial.create_trial(
        state=state,
        params={"model.normalize": "none", "model.optimizer.lr": lr},
        distributions={
            "model.normalize": optuna.distributions.CategoricalDistribution(["none"]),
            "model.optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1, log=True),
        },
        value=value if state == optuna.trial.TrialState.COMPLETE else None,
        user_attrs={"value": value, "diverged": diverged, "stable_lr": 3.4e-4, "best_line": 2.92765},
    )


@pytest.mark.parametrize("some_finished", [False, True])
def test_diverged_trials_are_drawn_apart_from_every_measured_loss(some_finished):
    trials = [pruned_or_done(lr, None, diverged=True) for lr in (1e-3, 1e-2, 0.1)]
    if some_finished:
        trials += [pruned_or_done(1e-5, 600.0), pruned_or_done(1e-4, 29.0)]
    figure = sweep_figure(trials, "model.optimizer.lr", "model.normalize", "train_loss", {})
    strip, losses = figure.axes
    assert list(strip.get_yticks()) == [] and strip.get_ylabel() == "diverged"  # no loss scale beside the crosses
    [crosses] = [line for line in strip.get_lines() if line.get_marker() == "x"]
    assert list(crosses.get_xdata()) == [1e-3, 1e-2, 0.1]
    # On the loss axes: the measured losses and the best line's, nothing at a diverged trial's rate.
    drawn = [line for line in losses.get_lines() if line.get_marker() not in ("None", "", None)]
    assert {y for line in drawn for y in line.get_ydata()} == ({600.0, 29.0} if some_finished else set())
    assert not {x for line in drawn for x in line.get_xdata()} & {1e-3, 1e-2, 0.1}
    levels = [line for line in losses.get_lines() if line.get_linestyle() == ":"]
    assert [list(line.get_ydata()) for line in levels] == [[2.92765, 2.92765]]


# --- Generated sweep files: each is accepted (checked, with `--check`: nothing runs) or refused in one line, with
# exit status 2, no traceback and nothing written.

junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4), st.lists(st.integers(), max_size=2))


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """A setting that is right three times in four: a file with one mistake at a time, and some with none."""
    return st.integers(0, 3).flatmap(lambda draw: valid if draw else invalid)


bounds = mostly(st.sampled_from([1e-3, 0.01, 0.5]), st.one_of(st.floats(-1, 2), st.sampled_from([0, 1e39, "x"])))
ranges = st.fixed_dictionaries(
    {"low": bounds, "high": bounds},
    optional={
        "num": mostly(st.integers(1, 3), st.one_of(st.integers(-1, 0), st.just(10**9), st.text(max_size=2))),
        "log": st.booleans(),
        "step": mostly(st.just(0.01), st.sampled_from([-1, "x", 0])),
        "by": junk,
    },
)
choices = st.lists(
    mostly(st.floats(1e-3, 0.5), st.sampled_from([-1.0, 1e39, "x", None, True, {"a": 1}, [1]])), min_size=1, max_size=3
)
spaces = mostly(
    st.one_of(
        st.fixed_dictionaries({"model.optimizer.lr": mostly(st.one_of(choices, ranges), junk)}),
        st.fixed_dictionaries(
            {
                "model.optimizer.lr": choices,
                "model.normalize": mostly(st.just(["none", "scale"]), st.just(["nope"])),
            }
        ),
        st.fixed_dictionaries({"model.optimizer": mostly(st.just(["SGD", "Adam"]), st.just(["Nope", 3]))}),
        st.fixed_dictionaries({"model.net": mostly(st.just(["Line", "MLP"]), st.just(["Nope"]))}),
    ),
    st.one_of(junk, st.dictionaries(st.sampled_from(["lr", "", "ckpt_path", "trainer.devices"]), choices, max_size=2)),
)
trial_args = mostly(
    st.just(["--trainer.max_epochs", "2"]),
    st.one_of(
        junk,
        st.lists(
            st.sampled_from(
                ["--trainer.max_epochs", "2", "--config", "nope.yaml", "--ckpt_path", "x", "validate", "-h"]
            ),
            max_size=4,
        ),
    ),
)
figures = mostly(
    st.fixed_dictionaries(
        {"x": st.just("model.optimizer.lr"), "by": st.just("model.optimizer.lr")},
        optional={"labels": mostly(st.just({"0.01": "a hundredth"}), junk), "title": mostly(st.just("lr"), junk)},
    ),
    st.one_of(junk, st.fixed_dictionaries({"x": st.sampled_from(["lr", 3, ["a"]]), "by": junk})),
)
storages = mostly(
    st.sampled_from(["sqlite:///s.db", "sqlite:///a/b.db", "sqlite://"]),
    st.sampled_from(["", "nope", "foo://x", "sqlite:///", "sqlite:///.", "sqlite:///sweep.yaml", "mysql://"]),
)
sweep_settings = st.fixed_dictionaries(
    {"args": trial_args, "space": spaces},
    optional={
        "sampler": mostly(st.sampled_from(["grid", "TPESampler", "RandomSampler"]), st.sampled_from(["Nope", 3])),
        "trials": mostly(st.integers(1, 3), st.one_of(st.integers(-1, 0), junk)),
        "objective": mostly(st.sampled_from(["train_loss", "val_loss", "best_loss"]), st.sampled_from(["bias", "foo"])),
        "pruner": mostly(
            st.fixed_dictionaries({"name": st.just("MedianPruner")}, optional={"n_warmup_steps": st.integers(0, 5)}),
            st.one_of(junk, st.fixed_dictionaries({"name": st.sampled_from(["Nope", 3]), "n_warmup_steps": junk})),
        ),
        "figure": figures,
        "storage": storages,
        "seed": mostly(st.integers(0, 2**32 - 1), st.one_of(st.integers(-2, -1), st.just(2**33), junk)),
    },
).flatmap(lambda file: mostly(st.just(file), st.builds(lambda foo: {**file, "foo": foo}, junk)))


command_line = mostly(
    st.just([]),
    st.sampled_from(
        [["--trials", "2"], ["--storage", "foo://x"], ["--name", "a/b"], ["--name", ""], ["--seed", "-1"], ["--x", "1"]]
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mostly(sweep_settings, junk), command_line)
def test_any_sweep_file_is_accepted_or_refused_in_one_line_with_nothing_written(
    tmp_path, monkeypatch, capsys, file, options
):
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    monkeypatch.chdir(directory)
    (directory / "sweep.yaml").write_text(yaml.safe_dump(file))
    try:
        assert sweep(["--config", "sweep.yaml", *options, "--check"]) is None
    except SystemExit as refused:
        err = capsys.readouterr().err
        assert refused.code == 2, err
        assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    else:
        assert "checked" in capsys.readouterr().out
    assert [path.name for path in directory.iterdir()] == ["sweep.yaml"]  # no run directory, no optuna.db
