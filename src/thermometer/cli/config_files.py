"""The `--config` files of a command line: which they are, that each can be read, and the run's name."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import yaml

from thermometer.errors import UsageError


def config_files(args: list[str]) -> list[str]:
    """The `--config` files among the arguments (not inline YAML or JSON, which LightningCLI also accepts)."""
    paths = [value for option, value in itertools.pairwise(args) if option in ("--config", "-c")]
    paths += [option.removeprefix("--config=") for option in args if option.startswith("--config=")]
    return [path for path in paths if ":" not in path and not path.lstrip().startswith("{")]


def run_name(args: list[str]) -> str:
    """The name a run goes by without `--name`: its `--config` files, `05_split`, or `default`.

    A run's own `lightning_logs/<name>/version_N/config.yaml` gives that run's name again.
    """
    names = []
    for path in map(Path, config_files(args)):
        in_a_run = path.name == "config.yaml" and path.parent.name.startswith("version_")
        names.append(path.parent.parent.name if in_a_run else path.stem)
    return "+".join(dict.fromkeys(names)) or "default"


def check_name(name: str | None) -> None:
    """`--name` is one directory's name, or a `UsageError` line says so."""
    if name is not None and (not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0")):
        raise UsageError(f"--name {name or repr(name)}: a run's name is one directory's name, e.g. 5_14_A.")


def check_config_files(
    args: list[str], example: str = "configs/book/03_scaled.yaml", mapping: str = "trainer: {max_epochs: 100}"
) -> None:
    """Each `--config` file exists and is valid YAML, or one `UsageError` line says which and where.

    `example` is a file to name instead of a missing one, `mapping` what a file holds (a sweep's differ).
    """
    for path in config_files(args):
        if not Path(path).is_file():
            raise UsageError(f"--config {path}: no such file. Give a YAML file, e.g. {example}.")
        try:
            options = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise UsageError(f"--config {path}: not UTF-8 text; save it as UTF-8.") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise UsageError(f"--config {path}: not valid YAML ({where}{getattr(error, 'problem', error)}).") from None
        if not isinstance(options, dict):
            what = "empty" if options is None else f"a YAML {type(options).__name__}"
            raise UsageError(f"--config {path}: {what}; a config maps options to values, e.g. '{mapping}'.")
        try:
            json.dumps(options)
        except ValueError:  # a recursive anchor: a structure that contains itself
            raise UsageError(f"--config {path}: an anchor refers to itself; a config cannot contain itself.") from None
