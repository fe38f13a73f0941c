"""LightningCLI wired to the thermometer: its defaults, its callbacks, and `fit` when no subcommand is given."""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from thermometer.cli import checks, resume
from thermometer.cli.config_files import check_config_files, check_name, run_name
from thermometer.cli.console import device_hint, quiet_console
from thermometer.cli.parser import ThermometerParser
from thermometer.data import TemperatureDataModule
from thermometer.data.batches import batch_sizes
from thermometer.errors import UsageError
from thermometer.linear import CHUNK_ROWS
from thermometer.net_checks import check_net, check_start
from thermometer.report.console import shown
from thermometer.report.figures import Figures
from thermometer.report.pipeline import Report
from thermometer.report.predictions import PredictionWriter
from thermometer.run import atomic
from thermometer.run.atomic import AtomicCheckpointIO
from thermometer.run.checkpoints import BestCheckpoint, LastCheckpoint, Patience
from thermometer.run.logger import RunLogger
from thermometer.run.parts import RunParts
from thermometer.run.stop import GracefulStop
from thermometer.system import Thermometer

SEED = 42
SUBCOMMANDS = ("fit", "validate", "test", "predict")
TRAINER_DEFAULTS = {
    "max_epochs": 1000,
    "use_distributed_sampler": False,  # RowBatches shares the batches out among processes
    "log_every_n_steps": 1,
    "enable_model_summary": False,
}


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
            config = self.config.clone()
            if config.data.csv_path is not None:  # it repeats the run from any directory
                config.data.csv_path = str(Path(config.data.csv_path).resolve())
            atomic.write_text(path, self.parser.dump(config, skip_none=False))


class ThermometerCLI(LightningCLI):
    """LightningCLI with early stopping, the best checkpoint and the figures as options of their own.

    `--early_stopping.*`, `--checkpoint.*` and `--figures.*`, and the run's `--name`. Checkpoints are loaded
    weights-only (no pickled code).

    Args:
        *args: LightningCLI's arguments.
        run_name: the run's name in `lightning_logs/`, over `--name` and the `--config` files' (a sweep's).
        only: the subcommand that runs, if known: only its parser is built (each costs a few hundred ms).
        stop: Ctrl-C and SIGTERM during `fit`.
        program: the command that ran, as its Resume line repeats it.
        stoppers: callbacks of the caller's that may stop a run and say why (a sweep's pruning).
        build_only: make the model, the data and the trainer, and run nothing (see `build`).
        **kwargs: LightningCLI's keyword arguments.

    """

    def __init__(
        self,
        *args: Any,
        run_name: str | None = None,
        only: str | None = None,
        stop: GracefulStop | None = None,
        program: str = "python scripts/train.py",
        stoppers: Sequence[Callback] = (),
        build_only: bool = False,
        **kwargs: Any,
    ) -> None:
        self.run_name, self.only, self.program, self.stoppers = run_name, only, program, stoppers
        self.build_only = build_only
        self.stop = stop or GracefulStop()
        self.report: Report | None = None
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:
        """Only the subcommand that runs, when it is known: each one's parser costs a few hundred milliseconds."""
        every = LightningCLI.subcommands()
        return {self.only: every[self.only]} if self.only in every else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(Patience, "early_stopping")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.add_class_arguments(Figures, "figures")
        parser.add_argument(
            "--name",
            type=str | None,
            default=None,
            help="the run's name: lightning_logs/<name>/version_N (default: its --config files' names, or default)",
        )
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

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self.given_args = list(sys.argv[1:] if args is None else args)
        printing = [arg for arg in self.given_args if arg.startswith("--print_config")]
        arguments = [arg for arg in self.given_args if arg not in printing]
        evaluating = next((a for a in arguments if a in SUBCOMMANDS), "fit") != "fit"
        if evaluating and (model := next((a for a in arguments if a.startswith("--model.")), None)):
            raise UsageError(
                f"{model.split('=')[0]}: validate, test and predict use the checkpoint's net, normalisation and "
                "weights as trained; leave the --model options out."
            )
        with warnings.catch_warnings():  # the arguments are the command line's, less --print_config
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter", category=UserWarning)
            super().parse_arguments(parser, arguments if printing or args is not None else None)
        # Mistakes end here, before LightningCLI reads a checkpoint (a traceback if it is no checkpoint) and before
        # any trainer or run directory exists.
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config  # `parse` has no subcommands: fit's options
        subcommand = subcommand or "fit"
        own_default_lr(config.model.optimizer, resume.given_model_keys(arguments, config.get("config") or []))
        checks.check(config, subcommand)
        check_name(config.get("name"))
        if subcommand != "fit" and not config.get("ckpt_path"):
            raise UsageError(f"{subcommand} needs a trained model: give --ckpt_path <run>/checkpoints/best.ckpt.")
        self.checkpoint: dict[str, Any] | None = None
        if config.get("ckpt_path"):
            checkpoint = self.checkpoint = resume.load_checkpoint(Path(config.ckpt_path))
            if subcommand == "fit" and "optimizer_states" not in checkpoint:
                raise UsageError(
                    f"--ckpt_path {config.ckpt_path} holds the weights only, not the state to resume training from: "
                    "give last.ckpt from the same checkpoints/ directory."
                )
            if subcommand == "fit":
                resume.check_epochs_left(config.trainer.max_epochs, checkpoint)
            resume.use_training_data(config.data, checkpoint, subcommand)
        if printing:  # the configuration this command line runs, with the corrections above
            tell_the_net(config.model.net, n_inputs(config.data.input_columns))
            skip_none = "skip_null" in printing[-1]
            shown = yaml.safe_load(parser.dump(self.config, skip_none=skip_none))
            shown = shown.get(subcommand, shown)
            for key in ("config", "print_config"):
                shown.pop(key, None)
            print(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True), end="")
            raise SystemExit(0)
        self.given = self.config.clone()

    def before_instantiate_classes(self) -> None:
        if self.subcommand is None:  # `parse`: the options alone, nothing is built
            return
        config = self.config[self.subcommand]
        if self.subcommand == "fit" and config.get("ckpt_path"):  # LightningCLI took the checkpoint's model options
            resume.keep_given_options(self.given[self.subcommand], config, self.given_args)
        if config.get("weights_only") is None:
            config.weights_only = True
        tell_the_net(config.model.net, config.model.n_inputs)
        if isinstance(config.model.net, Namespace) and "class_path" in config.model.net:
            checks.check_required(config.model.net, imported(config.model.net.class_path))

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

    def after_instantiate_classes(self) -> None:
        if self.build_only:  # LightningCLI runs `self.subcommand` after this hook: none, nothing runs
            self.subcommand = None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config_init[self.subcommand]
        check_net(self.model, len(self.datamodule.input_columns))  # before any run directory exists
        checks.check_optimizer(
            self.model.optimizer, self.config[self.subcommand].model.optimizer, self.model.parameters()
        )
        user_callbacks = config.trainer.callbacks or []
        user_callbacks = user_callbacks if isinstance(user_callbacks, list) else [user_callbacks]
        checks.check_monitors(user_callbacks, self.model)
        if self.subcommand == "predict":
            self.datamodule.load_predict()
            kwargs["enable_progress_bar"] = False  # one batch; the table of predictions is the output
        else:
            self.datamodule.load()
            trained_on = (self.checkpoint or {}).get(type(self.datamodule).__qualname__)
            if trained_on is not None:  # refused now if the rows are not the checkpoint's, before any file is written
                self.datamodule.load_state_dict(trained_on)
        self.check_batches()
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        if self.subcommand != "fit":
            # An evaluation trains nothing: its numbers go to the console (predictions.csv into the checkpoint's
            # run directory), not to a run of its own that would look like a training run in TensorBoard.
            kwargs["logger"] = False
        elif ckpt_path and (run_dir := resume.run_directory(ckpt_path)) is not None:
            # A resume continues in its run's own directory, from wherever it is started.
            if config.get("name") not in (None, run_dir.parent.name):
                raise UsageError(
                    f"--name {config.name}: a resume continues in its run's directory, {shown(run_dir)}; leave "
                    "--name out."
                )
            kwargs["logger"] = RunLogger(run_dir.parent.parent, run_dir.parent.name, run_dir.name)
            kwargs["logger"].claim()
        elif config.trainer.logger in (None, True):  # not the user's own logger
            # lightning_logs/<name>/version_N, named at run time: config.yaml need not carry a name to repeat a run.
            # Absolute: a resume from another working directory then continues in the same checkpoints' directory.
            root = Path(config.trainer.default_root_dir or ".").resolve()
            name = self.run_name or config.get("name") or run_name(self.given_args)
            kwargs["logger"] = RunLogger(root / "lightning_logs", name)
        plugins = config.trainer.plugins or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO(config.checkpoint.write_every)]
        last = next(c for c in self.trainer_defaults["callbacks"] if isinstance(c, LastCheckpoint))
        last.write_every = config.checkpoint.write_every
        parts = RunParts(config.early_stopping, config.checkpoint, last, self.stop, [*self.stoppers, *user_callbacks])
        self.report = Report(config.figures, parts, resume.resume_options(self.given_args), self.program)
        kwargs["callbacks"] = [*user_callbacks, self.stop, self.report]
        return super().instantiate_trainer(**kwargs)

    def check_batches(self) -> None:
        """The net on every batch size this command takes, and a new run's start, before anything is written."""
        data, n_inputs = self.datamodule, len(self.datamodule.input_columns)
        if self.subcommand == "predict":
            check_net(self.model, n_inputs, batch_sizes(len(data.predict_frame), data.batch_size))
            return
        training = batch_sizes(data.n_train, data.batch_size) if self.subcommand == "fit" else set()
        looked = batch_sizes(len(data.val_targets), data.batch_size)
        if self.subcommand == "fit":  # the summary looks at every row, a chunk at a time
            looked |= batch_sizes(data.n_train, CHUNK_ROWS) | batch_sizes(len(data.val_targets), CHUNK_ROWS)
        check_net(self.model, n_inputs, looked | training, training)
        if self.subcommand == "fit" and not self.config.fit.get("ckpt_path"):
            check_start(self.model, data.train_inputs, data.train_targets, data.batch_size or data.n_train)


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


def tell_the_net(net: Any, n_inputs: int) -> None:
    """Fill in the number of input columns for a net whose class takes `n_inputs`, so that no one repeats it."""
    if not isinstance(net, Namespace) or "class_path" not in net:
        return
    if "n_inputs" in inspect.signature(imported(net.class_path)).parameters:
        if net.get("init_args") is None:
            net.init_args = Namespace()
        net.init_args.n_inputs = n_inputs


def with_subcommand(args: list[str]) -> list[str]:
    """`fit` unless the arguments start with a subcommand or ask for the top-level help."""
    return args if args and args[0] in (*SUBCOMMANDS, "-h", "--help") else ["fit", *args]


def exit_status(summary: dict[str, Any] | None, stop: GracefulStop) -> int:
    """0 for a finished run; 1 if its loss diverged; 128 + the signal's number if a signal stopped it."""
    if summary and summary["diverged"]:
        return 1
    return 128 + stop.interrupted if stop.interrupted else 0


def interrupted(command: str, signum: signal.Signals | None) -> int:
    """Say, in one line, that a signal stopped `command` before it wrote anything; its exit status."""
    signum = signum or signal.SIGINT
    if rank_zero_only.rank == 0:  # Ctrl-C reaches every process; one of them answers
        done = "before training began" if command == "fit" else f"by {signum.name}: {command} stopped"
        print(f"\nInterrupted {done}; nothing was written.", file=sys.stderr)
    return 128 + signum


def thermometer_cli(
    args: list[str] | None,
    command: str,
    name: str | None,
    callbacks: Sequence[Callback],
    stop: GracefulStop,
    last: LastCheckpoint,
    program: str,
    build_only: bool = False,
) -> ThermometerCLI:
    """`ThermometerCLI` as the command line makes it: its parser, defaults and callbacks; see `main`."""
    return ThermometerCLI(
        Thermometer,
        TemperatureDataModule,
        parser_kwargs={
            "description": "Learn a thermometer's calibration t_c = w * t_u + b (chapter 5); `fit` by default.",
            "allow_abbrev": False,  # --trainer.max_epoch is a typo, not --trainer.max_epochs
            # A mistyped option then shows one usage line, not all hundred options.
            **{
                subcommand: {"usage": "%(prog)s [--config FILE] [--option value ...]", "allow_abbrev": False}
                for subcommand in (SUBCOMMANDS if command not in SUBCOMMANDS else [command])
            },
        },
        parser_class=ThermometerParser,
        seed_everything_default=SEED,
        save_config_callback=SaveFitConfig,
        auto_configure_optimizers=False,  # the optimizer is --model.optimizer; no second, top-level one
        trainer_defaults={
            **TRAINER_DEFAULTS,
            "enable_progress_bar": sys.stderr.isatty(),  # a bar in a terminal, not thousands of lines in a log
            # Each callback costs every hook of every epoch: predictions.csv is written by `predict` alone.
            "callbacks": [last, *callbacks] + ([PredictionWriter()] if command == "predict" else []),
        },
        args=args,
        run_name=name,
        only=command if command in SUBCOMMANDS else None,
        stop=stop,
        program=program,
        stoppers=callbacks,
        build_only=build_only,
    )


def main(
    args: list[str] | None = None, name: str | None = None, callbacks: Sequence[Callback] = ()
) -> ThermometerCLI | None:
    """Run the command line (`sys.argv`, or `args` from Python); `fit` when no subcommand is given.

    From Python, `name` names the run's directory (`lightning_logs/<name>/version_N`) instead of its `--config`
    files, and `callbacks` join the run's own (a sweep's pruning, say): neither is an option a config could repeat.

    A mistake in the data or the options ends with one line on stderr and exit status 2; a run whose loss
    diverged ends with its diagnosis and exit status 1; Ctrl-C or SIGTERM ends the epoch, prints how to resume
    and exits with 128 + the signal's number.
    """
    program = "python scripts/train.py"
    if args is None:  # from the shell: LightningCLI reads sys.argv itself
        sys.argv[1:] = with_subcommand(sys.argv[1:])
        # `--model.net my_module.MyNet` finds my_module.py in the working directory, as `python -m` would.
        sys.path.insert(0, os.getcwd())
        command = sys.argv[1]
        program = shown_program(sys.argv[0])
    else:  # from Python (tests, notebooks): the process's own sys.argv is not ours to read
        args = with_subcommand(list(args))
        command = args[0]
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
    given = sys.argv[1:] if args is None else args
    quiet_console(command)
    stop, last = GracefulStop(), LastCheckpoint()
    stop.at_once()  # until fit's setup takes over, or an evaluation's loop has run: a signal stops it at once
    cli: ThermometerCLI | None = None
    try:
        check_config_files(given)
        cli = thermometer_cli(args, command, name, callbacks, stop=stop, last=last, program=program)
    except (UsageError, MisconfigurationException) as error:
        if os.environ.get("THERMOMETER_DEBUG"):  # the README's way to see where a message came from
            raise
        print(f"error: {error}{device_hint(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except SyntaxError as error:  # in a module of the user's that an option names (--model.net my_nets.MyNet)
        print(f"error: {error.filename}, line {error.lineno}: {error.msg}; fix the module.", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C before training began, or an evaluation's signal: nothing was written
        raise SystemExit(interrupted(command, stop.signal)) from None
    except SystemExit as exit_:
        if stop.twice:  # a second Ctrl-C, on which Lightning exits with status 1
            print(stop.stopped_at_once(program, resume.resume_options(given)), file=sys.stderr)
            raise SystemExit(128 + stop.signal) from None
        if isinstance(exit_.__context__, KeyboardInterrupt):  # Lightning's own way out of a Ctrl-C: status 1
            raise SystemExit(interrupted(command, stop.signal)) from None
        raise
    finally:
        stop.release()
    summary = cli.report.summary if cli.report is not None else None
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
                trainer_defaults=TRAINER_DEFAULTS,
                args=args,
                run=False,  # the parser without subcommands: fit's options
            )
        except UsageError as error:  # without the parser's hint, which names the process's own script
            raise UsageError(str(error).splitlines()[0]) from None
    return cli.config


def build(args: list[str]) -> ThermometerCLI:
    """The model, data and trainer that `main(args)` would fit with, made and checked as it makes them.

    Nothing is trained and nothing written: `cli.model`, `cli.datamodule` (its rows loaded) and
    `cli.trainer` are there to be looked at (a sweep checks its trials so).

    Raises:
        UsageError: a mistake in the options, the data or the net, in one line.
    """
    args = with_subcommand(list(args))
    quiet_console(args[0])
    with warnings.catch_warnings():  # args from Python, whatever the process's own command line
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
        try:
            check_config_files(args)
            program = "python scripts/train.py"
            stop, last = GracefulStop(), LastCheckpoint()
            return thermometer_cli(args, args[0], None, (), stop, last, program, build_only=True)
        except (UsageError, MisconfigurationException) as error:  # without the parser's hint, as `parse`
            raise UsageError(f"{str(error).splitlines()[0]}{device_hint(error)}") from None


def shown_program(script: str) -> str:
    """The command as a user would type it again here: `python scripts/train.py`, or the `thermometer` command."""
    if not script.endswith(".py"):
        return Path(script).name
    shown = os.path.relpath(script)
    return f"python {script if shown.startswith('..') else shown}"


def cli_main() -> None:
    """The `thermometer` command: `main` from the shell, its status the process's."""
    main()
