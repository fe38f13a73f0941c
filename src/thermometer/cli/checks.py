"""Option values the libraries underneath would choke on, refused before anything runs, each in one message.

jsonargparse checks types; these are the values of the right type that torch, Lightning or this project's run
cannot use: numbers beyond float32 or int64, seeds out of range, settings that switch off what a run relies on.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningModule

from thermometer.errors import UsageError

FLOAT32_MAX = 3.4028234663852886e38
INT64_MAX = 2**63 - 1
SEED_MAX = 2**32 - 1  # Lightning's seed_everything, as numpy takes it


def check(config: Any, subcommand: str) -> None:
    """Raise `UsageError` for the first option value in `config` (one subcommand's) that cannot be used."""
    for name, value in (config.model.optimizer.get("init_args") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and not abs(value) < FLOAT32_MAX:
            raise UsageError(f"--model.optimizer.{name} {value:g}: beyond float32, the weights' type (±3.4e38).")
    arguments = config.model.optimizer.get("init_args") or {}
    lr = arguments.get("lr")
    if "lr" in arguments and lr is None:
        raise UsageError("--model.optimizer.lr null: a learning rate is a positive number, e.g. 0.01.")
    if isinstance(lr, int | float) and not lr > 0:
        raise UsageError(f"--model.optimizer.lr is {lr:g}; a learning rate must be positive, e.g. 0.01.")
    metrics = config.model.get("metrics") or []
    names = [m.class_path.rsplit(".", 1)[-1] for m in metrics if isinstance(m, Namespace) and "class_path" in m]
    if twice := next((name for name in names if names.count(name) > 1), None):
        raise UsageError(
            f"--model.metrics: {twice} twice; each metric is logged by its class's name (val/{twice}), so give a "
            "class once."
        )
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
    limit = {"validate": "limit_val_batches", "test": "limit_test_batches"}.get(subcommand)
    if limit and trainer.get(limit) in (0, 0.0):
        raise UsageError(f"--trainer.{limit} 0: {subcommand} would evaluate nothing; leave it out.")
    if subcommand == "fit" and config.data.val_fraction > 0 and trainer.get("limit_val_batches") in (0, 0.0):
        raise UsageError(
            "--trainer.limit_val_batches 0 validates on nothing, but early stopping and the best checkpoint watch "
            "val/loss: to train without validation, give --data.val_fraction 0."
        )
    if str(trainer.get("precision")) in ("16", "16-true", "half", "64", "64-true", "double", "bf16-true"):
        raise UsageError(
            f"--trainer.precision {trainer.precision}: the readings, the weights and the checkpoints are float32 here, "
            "and the reports and figures evaluate the net so; leave it out (32-true), or use bf16-mixed."
        )
    if trainer.get("enable_checkpointing") is False:
        raise UsageError(
            "--trainer.enable_checkpointing false: a run's best and last checkpoints are what validate, test, "
            "predict and a resume start from; leave it out."
        )
    if trainer.get("devices") in (0, "0"):
        raise UsageError("--trainer.devices 0: a run needs 1 or more, e.g. --trainer.devices 1 (or leave it out).")
    if subcommand == "fit":
        check_fit(config)


def check_fit(config: Any) -> None:
    """The training loop's options: counts Lightning would divide by, and settings that make a run say nothing."""
    trainer = config.trainer
    for option in ("accumulate_grad_batches", "check_val_every_n_epoch"):
        if trainer.get(option) is not None and trainer.get(option) < 1:
            raise UsageError(f"--trainer.{option} {trainer.get(option)}: it counts, so it must be 1 or more.")
    interval = trainer.get("val_check_interval")
    # A time ("00:00:01:00") is parsed by Lightning only as fit begins; a count or share must be at most an epoch.
    if isinstance(interval, str) or (interval is not None and not 0 < interval <= 1):
        raise UsageError(
            f"--trainer.val_check_interval {interval}: an epoch here is a batch or a few; validate every epoch "
            "(leave it out) or every few with --trainer.check_val_every_n_epoch."
        )
    if trainer.get("overfit_batches"):
        raise UsageError(
            "--trainer.overfit_batches: Lightning swaps in its own sampler, which the readings' batches do not take; "
            "to fit a few rows, give a CSV of them with --data.csv_path."
        )
    if trainer.get("limit_train_batches") in (0, 0.0):
        raise UsageError("--trainer.limit_train_batches 0 trains on nothing; leave it out.")
    if trainer.get("max_steps") == 0:
        raise UsageError("--trainer.max_steps 0 trains on nothing; give 1 or more, or -1 (no limit).")
    if not config.checkpoint.write_every >= 0:
        raise UsageError(f"--checkpoint.write_every {config.checkpoint.write_every}: seconds, 0 or more (0: at once).")
    epochs, least = trainer.get("max_epochs"), trainer.get("min_epochs")
    if epochs is not None and (epochs == 0 or epochs < -1):
        raise UsageError(f"--trainer.max_epochs {epochs}: give 1 or more (or -1 to train until stopped).")
    if least is not None and epochs not in (None, -1) and least > epochs:
        raise UsageError(f"--trainer.min_epochs {least} is more than --trainer.max_epochs {epochs}.")
    every = trainer.get("check_val_every_n_epoch")
    if config.data.val_fraction > 0 and every and epochs not in (None, -1) and every > epochs:
        raise UsageError(
            f"--trainer.check_val_every_n_epoch {every} with --trainer.max_epochs {epochs} never validates, but "
            f"early stopping and the best checkpoint watch val/loss: give at most {epochs}, or --data.val_fraction 0."
        )
    clip = trainer.get("gradient_clip_val")
    if clip is not None and not clip >= 0:
        raise UsageError(f"--trainer.gradient_clip_val {clip}: a norm, 0 or more (0 or leaving it out: no clipping).")
    for option in ("early_stopping", "checkpoint"):
        if config[option].mode != "min":
            raise UsageError(f"--{option}.mode {config[option].mode}: it watches a loss, best when lowest: min.")
    if config.model.normalize == "scale" and not config.model.scale:
        raise UsageError("--model.scale 0 makes every reading 0: nothing can be learned. Give e.g. 0.1.")
    if config.model.normalize == "scale" and not abs(config.model.scale) < FLOAT32_MAX:
        raise UsageError(
            f"--model.scale {config.model.scale:g}: beyond float32, the readings' type (±3.4e38). Give e.g. 0.1."
        )


def check_optimizer(optimizer: Any, config: Any, parameters: Iterable[torch.Tensor]) -> None:
    """Refuse an optimizer that cannot take one step on the net's dense parameters, such as `SparseAdam`.

    It steps copies of them, of the same shapes (`Muon` takes only 2-D ones): the net's own stay as they are.
    """
    weights = [torch.nn.Parameter(torch.ones_like(p)) for p in parameters]

    def loss() -> torch.Tensor:
        return sum((weight**2).sum() for weight in weights)

    try:
        probe = optimizer(weights)
        probe.zero_grad()
        loss().backward()
        probe.step(loss)  # a closure, which LBFGS needs and the others ignore
    except Exception as error:  # whatever the optimizer raises
        name = config.class_path if isinstance(config, Namespace) else type(optimizer).__name__
        raise UsageError(f"--model.optimizer {name}: cannot train the net's dense weights ({error}).") from None


def check_monitors(callbacks: list[Callback], model: LightningModule) -> None:
    """Refuse a callback watching a value no run logs: the losses and the model's own metrics are logged."""
    logged = ["train/loss", "val/loss", *model.train_metrics.keys(), *model.val_metrics.keys()]
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if monitor is not None and monitor not in logged:
            name = type(callback).__name__
            raise UsageError(f"--trainer.callbacks {name} monitors {monitor!r}; a run logs {', '.join(logged)}.")


def check_required(net: Any, net_class: type) -> None:
    """Refuse a net's argument that has no default and was not given (jsonargparse leaves an untyped one None)."""
    given = net.get("init_args") or Namespace()
    for name, parameter in inspect.signature(net_class).parameters.items():
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if parameter.kind in kinds and parameter.default is inspect.Parameter.empty and given.get(name) is None:
            raise UsageError(
                f"--model.net.{name}: {net.class_path} needs it (it has no default); give --model.net.{name} <value>."
            )
