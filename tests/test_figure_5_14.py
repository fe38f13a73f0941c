"""scripts/figure_5_14.py: Figure 5.14 drawn from the four named scenario runs, here on tiny ones of a few epochs."""

import importlib.util
import sys
from pathlib import Path

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).parents[1]


@pytest.fixture
def figure_5_14(tmp_path, monkeypatch):
    """The script as a module, its scenarios cut to a few epochs each, run in tmp_path."""
    spec = importlib.util.spec_from_file_location("figure_5_14", ROOT / "scripts" / "figure_5_14.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    short = ["--trainer.enable_progress_bar=false", "--early_stopping.patience", "100"]
    monkeypatch.setattr(
        module,
        "SCENARIOS",
        {
            letter: (said, [*options, *short, "--trainer.max_epochs", str(epochs)])
            for (letter, (said, options)), epochs in zip(module.SCENARIOS.items(), (3, 4, 5, 6), strict=True)
        },
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["figure_5_14.py"])
    return module


def test_the_four_scenarios_trained_and_drawn_from_their_runs(figure_5_14, tmp_path):
    figure = figure_5_14.main(["--train", "--output", "figure.png"])
    runs = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("lightning_logs/*/version_*"))
    assert runs == [Path(f"lightning_logs/5_14_{letter}/version_0") for letter in "ABCD"]
    axes = figure.get_axes()
    assert [ax.get_title().split(":")[0] for ax in axes] == ["A", "B", "C", "D"]
    for ax, run, epochs in zip(axes, runs, (3, 4, 5, 6), strict=True):
        events = EventAccumulator(str(tmp_path / run))
        events.Reload()
        train, val, lowest = ax.get_lines()
        assert list(train.get_xdata()) == list(range(1, epochs + 1))
        assert list(train.get_ydata()) == [e.value for e in events.Scalars("train/loss")]
        assert list(val.get_ydata()) == [e.value for e in events.Scalars("val/loss")]
        assert lowest.get_ydata()[0] == min(val.get_ydata())
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[:2] == ["training loss", "validation loss"] and legend[2].startswith("lowest validation loss")
    with Image.open(tmp_path / "figure.png") as png:
        assert png.format == "PNG" and png.size == (1000, 750)


def test_a_missing_run_is_one_line_and_nothing_is_written(figure_5_14, tmp_path, capsys):
    figure_5_14.main(["--train", "--output", "figure.png"])
    drawn = (tmp_path / "figure.png").read_bytes()
    (tmp_path / "lightning_logs" / "5_14_C" / "version_0" / "metrics.json").unlink()  # as if it never finished
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        figure_5_14.main(["--output", "figure.png"])
    assert exit_.value.code == 2
    [message] = capsys.readouterr().err.strip().splitlines()
    assert message.startswith("error: lightning_logs/5_14_C: no finished run of scenario C; make it with `python ")
    assert (tmp_path / "figure.png").read_bytes() == drawn


def test_the_readme_gives_the_scripts_commands():
    spec = importlib.util.spec_from_file_location("figure_5_14", ROOT / "scripts" / "figure_5_14.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    for letter, (said, _) in module.SCENARIOS.items():
        assert f"| {letter}: {said} | `{module.command(letter)}`" in readme
    assert "![Figure 5.14" in readme and "(docs/figure_5_14.png)" in readme
