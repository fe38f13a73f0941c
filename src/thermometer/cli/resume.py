"""What a resume may change, and what it must keep: the checkpoint's net, data and split; the options given with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml

from thermometer.errors import UsageError


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint of this project, loaded weights-only (a file that would run code to load is refused)."""
    if not path.is_file():
        raise UsageError(f"--ckpt_path {path}: no such file; give a .ckpt from lightning_logs/*/checkpoints/.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch raise many kinds
        if needs := re.search(r"GLOBAL (\S+)", str(error)):
            raise UsageError(
                f"--ckpt_path {path}: refused, loading it would run code ({needs[1]}); checkpoints are loaded "
                "weights-only. Give a checkpoint this project wrote."
            ) from None
        raise UsageError(f"--ckpt_path {path}: not a PyTorch checkpoint, torch.load cannot read it.") from None
    if not isinstance(checkpoint, dict) or "input_columns" not in checkpoint.get("datamodule_hyper_parameters", {}):
        raise UsageError(f"--ckpt_path {path}: not a checkpoint of this project (no thermometer data settings in it).")
    return checkpoint


def check_epochs_left(max_epochs: int | None, checkpoint: dict[str, Any]) -> None:
    """Refuse a resume to no more epochs than the checkpoint has trained: it would train nothing.

    Here, not where Lightning would refuse it on restoring: by then the run has an events file more.
    """
    trained = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    trained = trained.get("completed", checkpoint.get("epoch", 0))
    if max_epochs not in (None, -1) and trained > max_epochs:
        raise UsageError(
            f"--trainer.max_epochs {max_epochs}: the checkpoint has trained {trained} epochs already; give more to "
            f"train on (--trainer.max_epochs {trained + 1000}), or leave it out."
        )
    if max_epochs not in (None, -1) and trained == max_epochs:
        raise UsageError(
            f"the run has trained all its {trained} epochs (--trainer.max_epochs {max_epochs}): to train on, give "
            f"more (--trainer.max_epochs {trained + 1000})."
        )


def use_training_data(data: Any, checkpoint: dict[str, Any], subcommand: str) -> None:
    """Take the checkpoint's columns and split, and its CSV unless another is given: what the model was trained on."""
    trained_on = checkpoint["datamodule_hyper_parameters"]
    defaults = {"input_columns": ["t_u"], "target_column": "t_c", "val_fraction": 0.2, "split_seed": 149}
    for key, default in defaults.items():
        given, trained = data[key], trained_on.get(key, default)
        given, trained = (list(given), list(trained)) if key == "input_columns" else (given, trained)
        if given not in (default, trained):
            raise UsageError(f"the checkpoint was trained with --data.{key} {trained}, not {given}: leave it out.")
        data[key] = trained
    if data.csv_path is None:
        data.csv_path = trained_on["csv_path"]
    if subcommand in ("validate", "test") and data.val_fraction == 0:
        raise UsageError(
            f"the checkpoint was trained with val_fraction 0: no rows were held out to {subcommand} on. "
            "Use a checkpoint of a run with a validation split."
        )


def given_model_keys(args: list[str], configs: list[Any]) -> list[str]:
    """The model options given on the command line or in `--config` files, as keys of the parsed model config.

    `--model.optimizer.lr 0.05` is `optimizer.init_args.lr`; `--model.net MLP` is `net.class_path`.
    """
    dotted = [arg.removeprefix("--model.").split("=")[0] for arg in args if arg.startswith("--model.")]
    for config in configs:  # jsonargparse keeps each --config file's path
        path = Path(str(config))
        model = yaml.safe_load(path.read_text()).get("model") if path.is_file() else None
        dotted += flat_keys(model) if isinstance(model, dict) else []
    keys = []
    for key in dotted:
        parts = key.split(".")
        if parts[0] in ("net", "loss", "optimizer"):
            if len(parts) == 1:
                parts.append("class_path")
            elif parts[1] not in ("class_path", "init_args"):
                parts.insert(1, "init_args")
        keys.append(".".join(parts))
    return list(dict.fromkeys(keys))


def flat_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """`{"optimizer": {"init_args": {"lr": 0.1}}}` -> ["optimizer.init_args.lr"]."""
    keys = []
    for key, value in tree.items():
        if isinstance(value, dict):
            keys += flat_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def resume_options(args: list[str]) -> list[str]:
    """What the Resume command of a resumed run must repeat: its options beyond the run's config and checkpoint.

    None for a new run: its config.yaml holds all of them.
    """
    flat = [part for arg in args for part in (arg.split("=", 1) if arg.startswith("--") else [arg])]
    if flat[:1] != ["fit"] or "--ckpt_path" not in flat[1:-1]:
        return []
    run_config = (Path(flat[flat.index("--ckpt_path") + 1]).parent.parent / "config.yaml").resolve()
    kept, i = [], 1
    while i < len(flat):
        option, value = flat[i], flat[i + 1] if i + 1 < len(flat) else ""
        if option == "--ckpt_path" or (option == "--config" and Path(value).resolve() == run_config):
            i += 2
        else:
            kept.append(option)
            i += 1
    return kept


def keep_given_options(given: Any, resumed: Any, args: list[str]) -> None:
    """Options given with a resume over the checkpoint's hyperparameters, which LightningCLI applied over them.

    LightningCLI takes the model's hyperparameters from the checkpoint, which silently drops `--model.optimizer.lr
    0.05` given with `fit --ckpt_path`. The optimizer's arguments can change mid-run and are taken as given; the
    net, its arguments, the loss, the metrics, the normalisation and the optimizer's class cannot, and a change to
    them is refused in one message. `given` is the config as parsed, `resumed` as the checkpoint made it.
    """
    # The run's own config.yaml holds its first values; the checkpoint's are the latest (a resume may have changed
    # them): only the command line and other config files override the checkpoint.
    run_config = (Path(given.ckpt_path).parent.parent / "config.yaml").resolve()
    configs = [c for c in given.get("config") or [] if Path(str(c)).resolve() != run_config]
    for key in given_model_keys(args, configs):
        wanted, kept = given.model.get(key), resumed.model.get(key)
        if wanted == kept:
            continue
        if key.startswith("optimizer.init_args."):
            resumed.model[key] = wanted
            continue
        shown = key.replace(".init_args", "").replace(".class_path", "")
        raise UsageError(
            f"--model.{shown} {shown_value(wanted)}: a resumed run keeps the {shown} it was trained with "
            f"({shown_value(kept)}); of the model's options only the optimizer's arguments can change mid-run (the "
            "trainer's and early stopping's can too). Leave it out, or start a new run without --ckpt_path."
        )


def shown_value(value: Any) -> str:
    """A model option's value as a user would give it: `MLP` for `thermometer.nets.MLP`, `[MeanAbsoluteError]`."""
    if isinstance(value, list):
        return f"[{', '.join(map(shown_value, value))}]"
    if isinstance(value, str) and re.fullmatch(r"[\w.]+\.[A-Z]\w*", value):
        return value.rsplit(".", 1)[-1]
    return str(value)


def run_directory(ckpt_path: str) -> Path | None:
    """The run directory a `last.ckpt` belongs to, `lightning_logs/<name>/version_N`, or None for a loose file."""
    path = Path(ckpt_path).resolve()
    run_dir = path.parent.parent
    return run_dir if path.parent.name == "checkpoints" and run_dir.name.startswith("version_") else None
