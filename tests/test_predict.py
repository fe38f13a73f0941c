"""`predict`: new readings converted from a checkpoint, checked against the learned equation in `metrics.json`."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from thermometer.cli import main

NEW_READINGS = [35.7, 100.0, -40.0, 0.0, 212.0]


def predict(*args: str) -> None:
    main(["predict", *args])


def equation(metrics: dict, t_u: list[float]) -> list[float]:
    """`weight · features(t_u) + bias` with the raw-unit parameters of `metrics.json`, in float64."""
    x = torch.tensor(t_u, dtype=torch.float64)
    powers = torch.stack([x**k for k in range(1, len(metrics["weight"]) + 1)], dim=1)
    return (powers @ torch.tensor(metrics["weight"], dtype=torch.float64) + metrics["bias"]).tolist()


@pytest.mark.parametrize(
    "model",
    [
        ["--model.normalize", "none", "--model.optimizer.lr", "1e-4"],
        ["--model.normalize", "scale", "--model.optimizer.lr", "1e-2"],
        ["--model.normalize", "standardize"],
        ["--model.net", "Polynomial", "--model.net.degree", "3", "--model.optimizer.lr", "0.02"],
    ],
    ids=["raw", "scaled", "standardized", "cubic"],
)
def test_predictions_equal_the_learned_equation(model, cli, capsys):
    run = cli(*model, "--trainer.max_epochs", "30", "--figures.every_n_epochs", "1000")
    predict("--ckpt_path", str(run.path / "checkpoints" / "last.ckpt"), "--data.predict_readings", str(NEW_READINGS))
    written = pd.read_csv(run.path / "predictions.csv")
    assert list(written.columns) == ["t_u", "t_c_predicted"]
    assert written["t_u"].tolist() == pytest.approx(NEW_READINGS)
    assert written["t_c_predicted"].tolist() == pytest.approx(equation(run.metrics, NEW_READINGS), rel=1e-5, abs=1e-5)
    assert f"Predictions:  lightning_logs/default/{run.path.name}/predictions.csv" in capsys.readouterr().out


@pytest.fixture
def trained(default_run: Path, tmp_path: Path) -> Path:
    """A copy of the default run in tmp_path, for a test that writes its predictions beside its checkpoints."""
    return shutil.copytree(default_run, tmp_path / "lightning_logs" / "default" / default_run.name)


def test_predicting_from_a_csv_never_overwrites_an_earlier_file(trained, tmp_path, capsys):
    readings = tmp_path / "new.csv"
    readings.write_text("when,t_u\nmonday,35.7\ntuesday,55.9\nwednesday,81.9\n")  # other columns, no t_c: fine
    earlier = trained / "predictions.csv"
    earlier.write_text("someone's earlier predictions\n")
    best = str(trained / "checkpoints" / "best.ckpt")
    predict("--ckpt_path", best, "--data.predict_path", str(readings))
    predict("--ckpt_path", best, "--data.predict_path", str(readings))
    assert earlier.read_text() == "someone's earlier predictions\n"
    second, third = (pd.read_csv(trained / name) for name in ("predictions-2.csv", "predictions-3.csv"))
    assert second.equals(third) and second["t_u"].tolist() == pytest.approx([35.7, 55.9, 81.9])
    checkpoint = torch.load(best, weights_only=True)["state_dict"]
    w, b = checkpoint["net.weight"].item(), checkpoint["net.bias"].item()
    center, scale = checkpoint["normalize.center"].item(), checkpoint["normalize.scale"].item()
    expected = [w * (t_u - center) * scale + b for t_u in (35.7, 55.9, 81.9)]
    assert second["t_c_predicted"].tolist() == pytest.approx(expected, rel=1e-5)
    assert "predictions-3.csv" in capsys.readouterr().out.splitlines()[-1]


def test_predict_without_options_converts_the_training_readings(trained):
    predict("--ckpt_path", str(trained / "checkpoints" / "last.ckpt"))
    assert len(pd.read_csv(trained / "predictions.csv")) == 11


def test_a_checkpoint_of_your_own_csv_brings_its_columns_and_csv(cli, tmp_path, capsys):
    csv = tmp_path / "two.csv"
    csv.write_text("a,b,y\n" + "\n".join(f"{i},{i * i % 7},{2 * i + 1}" for i in range(20)))
    run = cli("--data.csv_path", str(csv), "--data.input_columns", "[a, b]", "--data.target_column", "y")
    last = str(run.path / "checkpoints" / "last.ckpt")
    predict("--ckpt_path", last)  # no data options: the checkpoint's CSV and columns
    written = pd.read_csv(run.path / "predictions.csv")
    assert list(written.columns) == ["a", "b", "y_predicted"] and len(written) == 20
    main(["validate", "--ckpt_path", last, "--trainer.enable_progress_bar=false"])
    with pytest.raises(SystemExit) as exit_:
        predict("--ckpt_path", last, "--data.input_columns", "[a]")
    assert exit_.value.code == 2
    assert "the checkpoint was trained with --data.input_columns ['a', 'b'], not ['a']: leave it out." in (
        capsys.readouterr().err
    )
