"""Option values the libraries underneath would choke on, refused before anything runs, each in one message.

jsonargparse checks types; these are the values of the right type that torch, Lightning or this project's run
cannot use: numbers beyond float32 or int64, seeds out of range, settings that switch off what a run relies on.
"""

from __future__ import annotations

from typing import Any

from thermometer.errors import UsageError

FLOAT32_MAX = 3.4028234663852886e38
INT64_MAX = 2**63 - 1
SEED_MAX = 2**32 - 1  # Lightning's seed_everything, as numpy takes it


def check(config: Any, subcommand: str) -> None:
    """Raise `UsageError` for the first option value in `config` (one subcommand's) that cannot be used."""
    for name, value in (config.model.optimizer.get("init_args") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and not abs(value) < FLOAT32_MAX:
            raise UsageError(f"--model.optimizer.{name} {value:g}: beyond float32, the weights' type (±3.4e38).")
    lr = (config.model.optimizer.get("init_args") or {}).get("lr")
    if isinstance(lr, int | float) and not lr > 0:
        raise UsageError(f"--model.optimizer.lr is {lr:g}; a learning rate must be positive, e.g. 0.01.")
    if config.early_stopping.patience < 0:
        raise UsageError(
            f"--early_stopping.patience is {config.early_stopping.patience}; it counts epochs without "
            "improvement before stopping, so it must be 0 or more, e.g. 10."
        )
    if not -(2**63) <= config.data.split_seed <= 2**64 - 1:
        raise UsageError(f"--data.split_seed {config.data.split_seed}: a seed is a whole number from 0 to 2**64 - 1.")
    seed = config.get("seed_everything")
    if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed <= SEED_MAX:
        raise UsageError(f"--seed_everything {seed}: a seed is a whole number from 0 to {SEED_MAX}, e.g. 42.")
    if config.data.batch_size is not None and config.data.batch_size > INT64_MAX:
        raise UsageError(f"--data.batch_size {config.data.batch_size}: at most {INT64_MAX}; leave it out for all rows.")
    trainer = config.trainer
    if trainer.get("fast_dev_run"):
        raise UsageError(
            "--trainer.fast_dev_run turns off the checkpoints, early stopping and logging a run is made of; for a "
            "quick check use --trainer.max_epochs 1."
        )
    if trainer.get("logger") is False:
        raise UsageError(
            "--trainer.logger false leaves a run no directory for its metrics.json, figures and checkpoints; to "
            "write them elsewhere, give --trainer.default_root_dir."
        )
    if subcommand == "fit" and config.data.val_fraction > 0 and trainer.get("limit_val_batches") in (0, 0.0):
        raise UsageError(
            "--trainer.limit_val_batches 0 validates on nothing, but early stopping and the best checkpoint watch "
            "val/loss: to train without validation, give --data.val_fraction 0."
        )
    if str(trainer.get("precision")) in ("16", "16-true", "half", "64", "64-true", "double"):
        raise UsageError(
            f"--trainer.precision {trainer.precision}: the readings are float32 and the CPU has no fast float16; "
            "leave it out (32-true), or use bf16-mixed."
        )
    if trainer.get("devices") in (0, "0"):
        raise UsageError("--trainer.devices 0: a run needs 1 or more, e.g. --trainer.devices 1 (or leave it out).")
