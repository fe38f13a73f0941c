"""The command line: LightningCLI with this project's defaults; `fit` when no subcommand is given."""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from thermometer.cli import checks
from thermometer.cli.parser import ThermometerParser
from thermometer.data import TemperatureDataModule
from thermometer.errors import UsageError
from thermometer.report.figures import Figures
from thermometer.report.history import History
from thermometer.report.predictions import PredictionWriter
from thermometer.report.summary import RunSummary
from thermometer.run import atomic
from thermometer.run.atomic import AtomicCheckpointIO
from thermometer.run.checkpoints import BestCheckpoint, LastCheckpoint, Patience
from thermometer.run.logger import RunLogger
from thermometer.run.stop import GracefulStop
from thermometer.system import Thermometer

SEED = 42
SUBCOMMANDS = ("fit", "validate", "test", "predict")


def monitored_loss(val_fraction: float) -> str:
    """Early stopping and the best checkpoint watch the validation loss, or the training loss without one."""
    return "val/loss" if val_fraction > 0 else "train/loss"


def n_inputs(input_columns: list[str]) -> int:
    """How many input columns the net is given.

    Not `len` itself: jsonargparse looks up an untyped built-in's parameters in typeshed's stubs, parsing them at
    every start (about 0.3 s).
    """
    return len(input_columns)


class SaveFitConfig(SaveConfigCallback):
    """`config.yaml` in the run directory of `fit` only: evaluating or predicting from a checkpoint trains nothing."""

    def setup(self, trainer: Trainer, pl_module: Thermometer, stage: str) -> None:
        # The run's first config stays. Rank 0 decides: it may have written the file by the time another looks.
        path = Path(trainer.log_dir) / self.config_filename  # log_dir broadcasts rank 0's directory
        resumed = trainer.strategy.broadcast(path.is_file())
        if stage == "fit" and not resumed and trainer.is_global_zero:
            atomic.write_text(path, self.parser.dump(self.config, skip_none=False))


class ThermometerCLI(LightningCLI):
    """LightningCLI with early stopping, the best checkpoint and the figures as options of their own.

    `--early_stopping.*`, `--checkpoint.*` and `--figures.*`. Checkpoints are loaded weights-only (no pickled code).
    """

    def __init__(self, *args: Any, run_name: str = "default", only: str | None = None, **kwargs: Any) -> None:
        self.run_name = run_name
        self.only = only
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:
        """Only the subcommand that runs, when it is known: each one's parser costs a few hundred milliseconds."""
        every = LightningCLI.subcommands()
        return {self.only: every[self.only]} if self.only in every else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(Patience, "early_stopping")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.add_lightning_class_args(Figures, "figures")
        parser.set_defaults(
            {
                "model.net": {"class_path": "thermometer.nets.Line"},
                "model.optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.2}},
                "early_stopping.patience": 10,
                "early_stopping.min_delta": 1e-6,
                "checkpoint.filename": "best",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_weights_only": True,  # last.ckpt is the one to resume from
            }
        )
        for target in ("early_stopping.monitor", "checkpoint.monitor"):
            parser.link_arguments("data.val_fraction", target, compute_fn=monitored_loss)
        parser.link_arguments("data.input_columns", "model.n_inputs", compute_fn=n_inputs)

    def before_instantiate_classes(self) -> None:
        if self.subcommand is None:  # `parse`: the options alone, nothing is built
            return
        config = self.config[self.subcommand]
        if config.get("weights_only") is None:
            config.weights_only = True
        tell_the_net(config.model.net, len(config.data.input_columns))

    def instantiate_classes(self) -> None:
        if self.subcommand is None:  # `parse`
            return
        try:
            super().instantiate_classes()
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:  # from a net's own __init__
            if isinstance(error, UsageError):
                raise
            if getattr(self, "model", None) is not None:  # the net was built: the trainer's options
                raise UsageError(f"the trainer's options: {error}") from None
            net = self.config[self.subcommand].model.net
            name = net.class_path if isinstance(net, Namespace) else type(net).__name__
            hint = " (a number beyond float32's ±3.4e38?)" if "overflow" in str(error) else ""
            raise UsageError(f"--model.net {name}: {error}{hint}") from None

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self.given_args = list(sys.argv[1:] if args is None else args)
        printing = [arg for arg in self.given_args if arg.startswith("--print_config")]
        if printing:  # jsonargparse prints and exits while parsing: check the values first, without printing
            with warnings.catch_warnings():  # the arguments are the command line's, less --print_config
                warnings.filterwarnings("ignore", message="LightningCLI's args parameter", category=UserWarning)
                self.parse_arguments(parser, [arg for arg in self.given_args if arg not in printing])
            self.given_args = list(sys.argv[1:] if args is None else args)
        evaluating = next((a for a in self.given_args if a in SUBCOMMANDS), "fit") != "fit"
        if evaluating and (model := next((a for a in self.given_args if a.startswith("--model.")), None)):
            raise UsageError(
                f"{model.split('=')[0]}: validate, test and predict use the checkpoint's net, normalisation and "
                "weights as trained; leave the --model options out."
            )
        super().parse_arguments(parser, args)
        # Mistakes end here, before LightningCLI reads a checkpoint (a traceback if it is no checkpoint) and before
        # any trainer or run directory exists.
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config  # `parse` has no subcommands: fit's options
        subcommand = subcommand or "fit"
        own_default_lr(config.model.optimizer, given_model_keys(self.given_args, config.get("config") or []))
        checks.check(config, subcommand)
        if subcommand != "fit" and not config.get("ckpt_path"):
            raise UsageError(f"{subcommand} needs a trained model: give --ckpt_path <run>/checkpoints/best.ckpt.")
        if config.get("ckpt_path"):
            checkpoint = load_checkpoint(Path(config.ckpt_path))
            if subcommand == "fit" and "optimizer_states" not in checkpoint:
                raise UsageError(
                    f"--ckpt_path {config.ckpt_path} holds the weights only, not the state to resume training from: "
                    "give last.ckpt from the same checkpoints/ directory."
                )
            if subcommand == "fit":
                check_epochs_left(config.trainer.max_epochs, checkpoint)
            use_training_data(config.data, checkpoint, subcommand)

    def _parse_ckpt_path(self) -> None:
        """Take the model's hyperparameters from the checkpoint, then the options given with a resume over them.

        LightningCLI applies the checkpoint's hyperparameters over the command line, which silently drops
        `--model.optimizer.lr 0.05` given with `fit --ckpt_path`. The optimizer's arguments can change mid-run and
        are taken as given; the net, its arguments, the normalisation and the optimizer's class cannot, and a change
        to them is refused in one message.
        """
        subcommand = self.config.get("subcommand")
        given = self.config.clone()
        super()._parse_ckpt_path()
        if subcommand != "fit" or not given[subcommand].get("ckpt_path"):
            return
        resumed = self.config[subcommand].model
        # The run's own config.yaml holds its first values; the checkpoint's are the latest (a resume may have
        # changed them): only the command line and other config files override the checkpoint.
        run_config = (Path(given[subcommand].ckpt_path).parent.parent / "config.yaml").resolve()
        configs = [c for c in given[subcommand].get("config") or [] if Path(str(c)).resolve() != run_config]
        for key in given_model_keys(self.given_args, configs):
            wanted, kept = given[subcommand].model.get(key), resumed.get(key)
            if wanted == kept:
                continue
            if key.startswith("optimizer.init_args."):
                resumed[key] = wanted
                continue
            shown = key.replace(".init_args", "").replace(".class_path", "")
            raise UsageError(
                f"--model.{shown} {wanted}: a resumed run keeps the {shown} it was trained with ({kept}); only the "
                "optimizer's arguments can change mid-run. Leave it out, or start a new run without --ckpt_path."
            )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        self.model.check_net(len(self.datamodule.input_columns))  # before any run directory exists
        check_optimizer(self.model.optimizer, self.config[self.subcommand].model.optimizer)
        if self.subcommand == "predict":
            self.datamodule.load_predict()
            kwargs["enable_progress_bar"] = False  # one batch; the table of predictions is the output
        else:
            self.datamodule.load()
        if self.subcommand != "fit":
            # An evaluation trains nothing: its numbers go to the console (predictions.csv into the checkpoint's
            # run directory), not to a run of its own that would look like a training run in TensorBoard.
            kwargs["logger"] = False
        elif self.config_init[self.subcommand].trainer.logger in (None, True):  # not the user's own logger
            # lightning_logs/<name>/version_N, named at run time: config.yaml need not carry a name to repeat a run.
            root = Path(self.config_init[self.subcommand].trainer.default_root_dir or ".")
            kwargs["logger"] = RunLogger(root / "lightning_logs", self.run_name, default_hp_metric=False)
        plugins = self.config_init[self.subcommand].trainer.plugins or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]  # checkpoints written whole or not at all
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        if self.subcommand == "fit" and ckpt_path:  # resuming: continue in the checkpoint's own run directory
            # As the run wrote it, relative to here: Lightning restores the checkpoints' state only for the same path.
            shown = os.path.relpath(ckpt_path)
            run_dir = Path(ckpt_path if shown.startswith("..") else shown).parent.parent
            if Path(ckpt_path).parent.name == "checkpoints" and run_dir.name.startswith("version_"):
                kwargs["logger"] = RunLogger(run_dir.parent.parent, run_dir.parent.name, run_dir.name, False)
                kwargs["logger"].claim()
        return super().instantiate_trainer(**kwargs)


def imported(class_path: str) -> Any:
    """The class at a dotted path, `torch.optim.Adam`, as jsonargparse has already checked it can be imported."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def own_default_lr(optimizer: Any, given: list[str]) -> None:
    """`--model.optimizer Adam` without an lr takes Adam's own default, not the 0.2 set for the default SGD."""
    if "optimizer.class_path" not in given or "optimizer.init_args.lr" in given or not isinstance(optimizer, Namespace):
        return
    default = inspect.signature(imported(optimizer.class_path)).parameters.get("lr")
    if default is not None and isinstance(default.default, int | float) and optimizer.get("init_args"):
        optimizer.init_args.lr = default.default


def check_optimizer(optimizer: Any, config: Any) -> None:
    """Refuse an optimizer that cannot take one step on dense parameters, such as `SparseAdam`."""
    weight = torch.nn.Parameter(torch.ones(2))
    try:
        probe = optimizer([weight])
        probe.zero_grad()
        (weight**2).sum().backward()
        probe.step(lambda: (weight**2).sum())  # a closure, which LBFGS needs and the others ignore
    except Exception as error:  # whatever the optimizer raises
        name = config.class_path if isinstance(config, Namespace) else type(optimizer).__name__
        raise UsageError(f"--model.optimizer {name}: cannot train the net's dense weights ({error}).") from None


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
        if parts[0] in ("net", "optimizer"):
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


def tell_the_net(net: Any, n_inputs: int) -> None:
    """Fill in the number of input columns for a net whose class takes `n_inputs`, so that no one repeats it."""
    if not isinstance(net, Namespace) or "class_path" not in net:
        return
    if "n_inputs" in inspect.signature(imported(net.class_path)).parameters:
        if net.get("init_args") is None:
            net.init_args = Namespace()
        net.init_args.n_inputs = n_inputs


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
    """Refuse a resume to fewer epochs than the checkpoint has trained.

    Here, not where Lightning would refuse it on restoring: by then the run has an events file more.
    """
    trained = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    trained = trained.get("completed", checkpoint.get("epoch", 0))
    if max_epochs not in (None, -1) and trained > max_epochs:
        raise UsageError(
            f"--trainer.max_epochs {max_epochs}: the checkpoint has trained {trained} epochs already; give more to "
            f"train on (--trainer.max_epochs {trained + 1000}), or leave it out."
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


# Lightning's info lines a user cannot act on: tips, the seed (it is in config.yaml), absent accelerators, why
# fit stopped (the summary says it, with the reason), and which checkpoint was restored (the command says it).
UNACTIONABLE = (
    "💡 Tip:",
    "Seed set to",
    "GPU available: False",
    "TPU available: False",
    "`Trainer.fit` stopped:",
    "Restoring states from the checkpoint path",
    "Restored all states from the checkpoint",  # the Resume command said which
    "Loaded model weights from the checkpoint",  # --ckpt_path said which
    "Initializing distributed:",  # one per process; Lightning's banner then says how many started
)


def _actionable(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if message.startswith("[rank: "):  # another process's copy: `[rank: 1] Seed set to 42`
        message = message.partition("] ")[2]
    return not message.startswith(UNACTIONABLE)


def quiet_console(subcommand: str) -> None:
    """Hide what a user cannot act on: Lightning's tips and notices, warnings about Lightning's code or our choices."""
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )
    # val_fraction 0 gives an empty validation list on purpose: the book's first experiments have no validation.
    warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero", category=UserWarning)
    # Every run gets a fresh version_N (RunLogger), so a non-empty checkpoint directory means a resumed run.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty", category=UserWarning)
    if subcommand != "fit":  # evaluating a checkpoint needs none of its training callbacks' state
        # An evaluation logs to no logger on purpose: its table of results is printed on the console.
        warnings.filterwarnings("ignore", message=r"You called `self.log\(.*no logger configured", category=UserWarning)
        warnings.filterwarnings("ignore", message="The dirpath has changed from", category=UserWarning)
        warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`", category=UserWarning)
    if subcommand == "predict":  # PredictionWriter writes rows in order and needs no batch indices
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices", category=UserWarning)
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if _actionable not in handler.filters:
                handler.addFilter(_actionable)


def config_files(args: list[str]) -> list[str]:
    """The `--config` files among the arguments (not inline YAML or JSON, which LightningCLI also accepts)."""
    paths = [value for option, value in itertools.pairwise(args) if option in ("--config", "-c")]
    paths += [option.removeprefix("--config=") for option in args if option.startswith("--config=")]
    return [path for path in paths if ":" not in path and not path.lstrip().startswith("{")]


def run_name(args: list[str]) -> str:
    """The name a run goes by in `lightning_logs/` and TensorBoard: its `--config` files, `05_split`, or `default`.

    A run's own `lightning_logs/<name>/version_N/config.yaml` gives that run's name again.
    """
    names = []
    for path in map(Path, config_files(args)):
        in_a_run = path.name == "config.yaml" and path.parent.name.startswith("version_")
        names.append(path.parent.parent.name if in_a_run else path.stem)
    return "+".join(dict.fromkeys(names)) or "default"


def check_config_files(args: list[str]) -> None:
    """Each `--config` file exists and is valid YAML, or one `UsageError` line says which and where."""
    for path in config_files(args):
        if not Path(path).is_file():
            raise UsageError(f"--config {path}: no such file. Give a YAML file, e.g. configs/book/03_scaled.yaml.")
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
            raise UsageError(
                f"--config {path}: {what}; a config maps options to values, e.g. 'trainer: {{max_epochs: 100}}'."
            )
        try:
            json.dumps(options)
        except ValueError:  # a recursive anchor: a structure that contains itself
            raise UsageError(f"--config {path}: an anchor refers to itself; a config cannot contain itself.") from None


def with_subcommand(args: list[str]) -> list[str]:
    """`fit` unless the arguments start with a subcommand or ask for the top-level help."""
    return args if args and args[0] in (*SUBCOMMANDS, "-h", "--help") else ["fit", *args]


def device_hint(error: Exception) -> str:
    """The fix for a device Lightning cannot find here: the pinned torch is a CPU build."""
    if "gpu backend" in str(error) or "CUDA" in str(error) or "MPS" in str(error):
        return (
            " This torch is a CPU build (torch==2.13.0 from requirements.txt): leave --trainer.accelerator out, or "
            "install a CUDA build of torch on a machine with a GPU."
        )
    return ""


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


def exit_status(summary: RunSummary, stop: GracefulStop) -> int:
    """0 for a finished run; 1 if its loss diverged; 128 + the signal's number if a signal stopped it."""
    if summary.summary and summary.summary["diverged"]:
        return 1
    return 128 + stop.interrupted if stop.interrupted else 0


def main(args: list[str] | None = None, name: str | None = None, callbacks: Sequence[Callback] = ()) -> ThermometerCLI:
    """Run the command line (`sys.argv`, or `args` from Python); `fit` when no subcommand is given.

    From Python, `name` names the run's directory (`lightning_logs/<name>/version_N`) instead of its `--config`
    files, and `callbacks` join the run's own (a sweep's pruning, say): neither is an option a config could repeat.

    A mistake in the data or the options ends with one line on stderr and exit status 2; a run whose loss
    diverged ends with its diagnosis and exit status 1; Ctrl-C or SIGTERM ends the epoch, prints how to resume
    and exits with 128 + the signal's number.
    """
    if args is None:  # from the shell: LightningCLI reads sys.argv itself
        sys.argv[1:] = with_subcommand(sys.argv[1:])
        # `--model.net my_module.MyNet` finds my_module.py in the working directory, as `python -m` would.
        sys.path.insert(0, os.getcwd())
        command = sys.argv[1]
    else:  # from Python (tests, notebooks): the process's own sys.argv is not ours to read
        args = with_subcommand(list(args))
        command = args[0]
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
    given = sys.argv[1:] if args is None else args
    quiet_console(command)
    summary, stop = RunSummary(), GracefulStop()
    summary.resume_options = resume_options(given)
    try:
        check_config_files(given)
        cli = ThermometerCLI(
            Thermometer,
            TemperatureDataModule,
            parser_kwargs={
                "description": "Learn a thermometer's calibration t_c = w * t_u + b (chapter 5); `fit` by default.",
                "allow_abbrev": False,  # --trainer.max_epoch is a typo, not --trainer.max_epochs
                # A mistyped option then shows one usage line, not all hundred options.
                **{
                    name: {"usage": "%(prog)s [--config FILE] [--option value ...]", "allow_abbrev": False}
                    for name in (SUBCOMMANDS if command not in SUBCOMMANDS else [command])
                },
            },
            parser_class=ThermometerParser,
            seed_everything_default=SEED,
            save_config_callback=SaveFitConfig,
            auto_configure_optimizers=False,  # the optimizer is --model.optimizer; no second, top-level one
            trainer_defaults={
                "max_epochs": 1000,
                "use_distributed_sampler": False,  # RowBatches shares the batches out among processes
                "enable_progress_bar": sys.stderr.isatty(),  # a bar in a terminal, not thousands of lines in a log
                "log_every_n_steps": 1,
                "enable_model_summary": False,
                # Each callback costs every hook of every epoch: predictions.csv is written by `predict` alone.
                "callbacks": [LastCheckpoint(), stop, History(), summary]
                + ([PredictionWriter()] if command == "predict" else [])
                + list(callbacks),
            },
            args=args,
            run_name=name or run_name(given),
            only=command if command in SUBCOMMANDS else None,
        )
    except (UsageError, MisconfigurationException) as error:
        if os.environ.get("THERMOMETER_DEBUG"):  # the README's way to see where a message came from
            raise
        print(f"error: {error}{device_hint(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C before training began: nothing was written
        print("\nInterrupted before training began; nothing was written.", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None
    except SystemExit:
        if stop.twice:  # a second Ctrl-C, on which Lightning exits with status 1
            print(stop.stopped_at_once(summary.resume_options), file=sys.stderr)
            raise SystemExit(128 + stop.signal) from None
        raise
    if status := exit_status(summary, stop):  # the summary has said why: the diagnosis, or how to resume
        raise SystemExit(status)
    return cli


def parse(args: list[str]) -> Namespace:
    """The `fit` options that `main(args)` would train with, checked as it checks them, without training.

    Unless `--seed_everything` is given, nothing is seeded and the config's `seed_everything` is false.

    Raises:
        UsageError: a mistake in the options, in one line.
    """
    with warnings.catch_warnings():  # args from Python, whatever the process's own command line
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
        try:
            check_config_files(args)
            cli = ThermometerCLI(
                Thermometer,
                TemperatureDataModule,
                parser_kwargs={"allow_abbrev": False},
                parser_class=ThermometerParser,
                seed_everything_default=False,  # parsing only: the process's random state stays as it was
                auto_configure_optimizers=False,
                trainer_defaults={"max_epochs": 1000},  # main's, which the checks compare --trainer.min_epochs with
                args=args,
                run=False,  # the parser without subcommands: fit's options
            )
        except UsageError as error:  # without the parser's hint, which names the process's own script
            raise UsageError(str(error).splitlines()[0]) from None
    return cli.config
