"""Every bad input, through the command line: exit status 2, one message naming the problem and its fix, no
traceback, and nothing written: no new run directory, and the earlier run untouched."""

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from thermometer.cli import main

FILES = {
    "empty.csv": "",
    "header_only.csv": "t_u,t_c\n",
    "other_columns.csv": "t_u,temp\n1,2\n3,4\n",
    "semicolons.csv": "t_u;t_c\n1;2\n3;4\n",
    "word.csv": "t_u,t_c\n1,2\n3,warm\n4,5\n",
    "nan.csv": "t_u,t_c\n1,2\nnan,3\n4,5\n",
    "blank.csv": "t_u,t_c\n1,2\n3,\n4,5\n",
    "inf.csv": "t_u,t_c\n1,2\n3,4\n-inf,5\n",
    "twice.csv": "t_u,t_c,t_u\n1,2,3\n4,5,6\n",
    "one_row.csv": "t_u,t_c\n1,2\n",
    "four_rows.csv": "t_u,t_c\n1,2\n3,4\n5,6\n7,8\n",
    "ragged.csv": "t_u,t_c\n1,2\n3,4,5\n6,7\n",
    "two_inputs.csv": "a,b,t_c\n" + "".join(f"{i},{i % 3},{2 * i}\n" for i in range(12)),
    "latin1.csv": b"t_u,t_c\n\xff\xfe,1\n",
    "constant.csv": "t_u,t_c\n" + "".join(f"5,{i}\n" for i in range(12)),
    "beyond_float32.csv": "t_u,t_c\n1,2\n1e39,3\n4,5\n",
    "huge_target.csv": "t_u,t_c\n" + "".join(f"{i},{i}e30\n" for i in range(12)),
    "unreadable.csv": "t_u,t_c\n1,2\n3,4\n",
    "broken.yaml": "trainer: [max_epochs: 3\n",
    "empty.yaml": "",
    "list.yaml": "- 1\n- 2\n",
    "itself.yaml": "a: &x [*x]\n",
    "latin1.yaml": b"trainer:\n  max_epochs: 3\n# \xff\n",
    "fifteen_rows.csv": "t_u,t_c\n" + "".join(f"{i},{2 * i}\n" for i in range(15)),
    "blocked/lightning_logs": "a file where the runs' directory would be\n",
    "offset.csv": "t_u,t_c\n" + "".join(f"{1e8 + i * 0.7!r},{i}\n" for i in range(12)),
    "two_rows.csv": "t_u,t_c\n1,2\n3,4\n",
    "extra_fields.csv": "t_u,t_c\n0.0,0.0,0.0\n0.0,0.0, \n",  # found by test_promises' generated CSVs
    "comment_first.csv": "# my readings\nt_u,t_c\n1,2\n3,4\n",
    "trailing_commas.csv": "t_u,t_c\n1,2,\n3,4,\n5,6,\n",
    "bad_value.yaml": "model:\n  net:\n    class_path: Polynomial\n    init_args:\n      degree: two\n",
    "garbage.ckpt": b"not a checkpoint at all",
}
DDP = Path(__file__).parents[1] / "configs" / "presets" / "ddp.yaml"
EARLIER = "lightning_logs/default/version_0/checkpoints/best.ckpt"  # the earlier run's
EARLIER_LAST = EARLIER.replace("best", "last")  # the same run's checkpoint to resume from

CASES = {
    # The CSV.
    "csv missing": (["--data.csv_path", "missing.csv"], "missing.csv: no such file. Give an existing CSV"),
    "csv is a directory": (["--data.csv_path", "lightning_logs"], "lightning_logs is a directory. Give a CSV file"),
    "csv unreadable": (["--data.csv_path", "unreadable.csv"], "unreadable.csv: cannot be read as a CSV (Permission"),
    "csv empty": (["--data.csv_path", "empty.csv"], "empty.csv: the file is empty. It needs a header line"),
    "csv header only": (["--data.csv_path", "header_only.csv"], "header_only.csv: a header line but no rows"),
    "column missing": (["--data.csv_path", "other_columns.csv"], "no column 't_c'; found ['t_u', 'temp']. Choose"),
    "wrong delimiter": (["--data.csv_path", "semicolons.csv"], "the file is separated by ';'; it must be comma-sep"),
    "extra field": (["--data.csv_path", "ragged.csv"], "ragged.csv: cannot be read as a CSV (Error tokenizing data"),
    "non-numeric": (["--data.csv_path", "word.csv"], "word.csv: line 3, column 't_c': 'warm' is not a finite number"),
    "nan": (["--data.csv_path", "nan.csv"], "nan.csv: line 3, column 't_u': blank or NaN is not a finite number"),
    "blank": (["--data.csv_path", "blank.csv"], "blank.csv: line 3, column 't_c': blank or NaN is not a finite"),
    "infinite": (["--data.csv_path", "inf.csv"], "inf.csv: line 4, column 't_u': -inf is not a finite number"),
    "duplicate columns": (["--data.csv_path", "twice.csv"], "twice.csv: the header names 't_u' more than once"),
    "not utf-8": (["--data.csv_path", "latin1.csv"], "latin1.csv: cannot be read as a CSV ('utf-8' codec"),
    "one row": (["--data.csv_path", "one_row.csv", "--data.val_fraction", "0"], "1 row(s); a line needs at least 2"),
    "no validation row": (["--data.csv_path", "four_rows.csv"], "val_fraction 0.2 of 4 rows holds out 0"),
    "one training row": (
        ["--data.csv_path", "four_rows.csv", "--data.val_fraction", "0.9"],
        "4 rows leave 1 for training with val_fraction 0.9; a line needs at least 2",
    ),
    # The options.
    "val_fraction 1": (["--data.val_fraction", "1"], "val_fraction is 1.0; it must be in [0, 1)"),
    "val_fraction negative": (["--data.val_fraction", "-0.1"], "val_fraction is -0.1; it must be in [0, 1)"),
    "val_fraction word": (["--data.val_fraction", "most"], "--data.val_fraction most: expected a number"),
    "lr zero": (["--model.optimizer.lr", "0"], "--model.optimizer.lr is 0; a learning rate must be positive"),
    "lr negative": (["--model.optimizer.lr", "-1"], "--model.optimizer.lr is -1; a learning rate must be positive"),
    "lr word": (["--model.optimizer.lr", "fast"], "--model.optimizer.lr fast: expected a number."),
    "batch_size zero": (["--data.batch_size", "0"], "batch_size is 0; it must be 1 or more"),
    "batch_size negative": (["--data.batch_size", "-3"], "batch_size is -3; it must be 1 or more"),
    "batch_size word": (["--data.batch_size", "big"], "--data.batch_size big: expected a whole number or null."),
    "degree 0": (
        ["--model.net", "Polynomial", "--model.net.degree", "0"],
        "--model.net thermometer.Polynomial: degree is 0; it must be 1 to 60",
    ),
    "degree fraction": (
        ["--model.net", "Polynomial", "--model.net.degree", "1.5"],
        "--model.net.degree 1.5: expected a whole number.",
    ),
    "a metric class twice": (
        ["--model.metrics", "[MeanSquaredError, {class_path: MeanSquaredError, init_args: {squared: false}}]"],
        "--model.metrics: MeanSquaredError twice; each metric is logged by its class's name",
    ),
    "a loss that warns, then is not a number": (  # torch's warning of the look at the start is not shown
        ["--model.loss", "torch.nn.KLDivLoss"],
        "--model.loss KLDivLoss: nan for the net's first predictions, before any step",
    ),
    "a loss of many numbers": (
        ["--model.loss", "MSELoss", "--model.loss.reduction", "none"],
        "--model.loss MSELoss: gives (9,) torch.float32, not one real number to minimise",
    ),
    "a metric of classes": (
        ["--model.metrics", '[{"class_path": "torchmetrics.Accuracy", "init_args": {"task": "binary"}}]'],
        "--model.metrics BinaryAccuracy: fails on the net's predictions",
    ),
    "a net's argument without a default, not given": (
        ["--model.net", "tests.test_own_net.NeedsWidth"],
        "--model.net.width: tests.test_own_net.NeedsWidth needs it (it has no default)",
    ),
    "a net without a gradient": (
        ["--model.net", "tests.test_own_net.Detached"],
        "--model.net Detached with --model.loss MSELoss: the loss has no gradient towards the weights",
    ),
    # The net.
    "net unknown": (["--model.net", "my_nets.Wide"], "--model.net my_nets.Wide: cannot be imported (No module named"),
    "net class unknown": (
        ["--model.net", "thermometer.nets.Wide"],
        "thermometer.nets.Wide: cannot be imported (module",
    ),
    "net not a module": (["--model.net", "collections.OrderedDict"], "OrderedDict: not a subclass of torch.nn.Module"),
    "net output shape": (
        ["--model.net", "torch.nn.Identity", "--data.csv_path", "two_inputs.csv", "--data.input_columns", "[a, b]"],
        "--model.net Identity: returns (3, 2) for 3 rows; a net must return (batch,) or (batch, 1).",
    ),
    "net takes other inputs": (
        [
            "--model.net",
            "torch.nn.Bilinear",
            "--model.net.in1_features",
            "1",
            "--model.net.in2_features",
            "1",
            "--model.net.out_features",
            "1",
        ],
        "--model.net Bilinear: its forward fails on a (3, 1) batch of readings",
    ),
    "net argument missing": (["--model.net", "torch.nn.Linear"], "the following arguments are required: in_features"),
    "net argument unknown": (
        ["--model.net", "MLP", "--model.net.depth", "3"],
        "--model.net.depth: thermometer.MLP has no such",
    ),
    "net argument wrong": (
        ["--model.net", "MLP", "--model.net.hidden", "0"],
        "hidden is 0; a network needs at least 1",
    ),
    "net argument word": (["--model.net", "MLP", "--model.net.hidden", "many"], "--model.net.hidden many: expected a"),
    "activation unknown": (["--model.net", "MLP", "--model.net.activation", "relu"], "expected a class name such as"),
    "normalisation unknown": (
        ["--model.normalize", "zscore"],
        "--model.normalize zscore: expected one of 'none', 'scale', 'standardize'.",
    ),
    "input is the target": (["--data.input_columns", "[t_c]"], "'t_c' is both an input and the target column"),
    "target is an input": (["--data.target_column", "t_u"], "'t_u' is both an input and the target column"),
    "inputs not a list": (["--data.input_columns", "3"], '--data.input_columns 3: expected a list such as "[t_u]"'),
    "optimizer unknown": (["--model.optimizer", "Adamm"], "--model.optimizer Adamm: expected a class name such"),
    "optimizer option unknown": (["--model.optimizer.betas", "3"], "--model.optimizer.betas: torch.optim.SGD has no"),
    "patience negative": (["--early_stopping.patience", "-1"], "--early_stopping.patience is -1; it counts epochs"),
    "max_epochs word": (["--trainer.max_epochs", "many"], "--trainer.max_epochs many: expected a whole number"),
    "config missing": (["--config", "nope.yaml"], "--config nope.yaml: no such file. Give a YAML file"),
    "config not yaml": (["--config", "broken.yaml"], "--config broken.yaml: not valid YAML (line 2, column 1"),
    "config empty": (["--config", "empty.yaml"], "--config empty.yaml: empty; a config maps options to values"),
    "config a list": (["--config", "list.yaml"], "--config list.yaml: a YAML list; a config maps options"),
    "config contains itself": (["--config", "itself.yaml"], "--config itself.yaml: an anchor refers to itself"),
    "config not utf-8": (["--config", "latin1.yaml"], "--config latin1.yaml: not UTF-8 text"),
    "csv comment first": (["--data.csv_path", "comment_first.csv"], "the first line is a comment ('# my readings')"),
    "csv trailing commas": (["--data.csv_path", "trailing_commas.csv"], "line 2 ends with a comma, one field more"),
    "net misspelled": (["--model.net", "Mlp"], "--model.net Mlp: expected a class name such as Line, Polynomial, MLP"),
    "csv a device": (["--data.csv_path", "/dev/null"], "/dev/null: not a regular file (a device or a pipe)"),
    "config bad value": (["--config", "bad_value.yaml"], "--model.net.degree two: expected a whole number."),
    "unknown option": (["--model.optimiser", "Adam"], "unrecognized arguments: --model.optimiser Adam"),
    "abbreviated option": (["--trainer.max_epoch", "10"], "unrecognized arguments: --trainer.max_epoch 10"),
    "top-level optimizer": (["--optimizer", "Adam"], "unrecognized arguments: --optimizer Adam"),
    "option without value": (["--data.csv_path"], "argument --data.csv_path: expected one argument"),
    # Values the libraries underneath would choke on.
    "split_seed beyond int64": (["--data.split_seed", "99999999999999999999999"], "a seed is a whole number from 0"),
    "seed beyond numpy's": (["--seed_everything", "99999999999"], "--seed_everything 99999999999: a seed is a whole"),
    "init_weight beyond float32": (["--model.net.init_weight", "1e39"], "beyond float32's ±3.4e38"),
    "lr beyond float32": (["--model.optimizer.lr", "1e39"], "--model.optimizer.lr 1e+39: beyond float32"),
    "batch_size beyond int64": (["--data.batch_size", "99999999999999999999999"], "at most 9223372036854775807"),
    "max_points negative": (["--figures.max_points", "-1"], "--figures.max_points -1: a figure draws at least 1"),
    "precision 16-true": (["--trainer.precision", "16-true"], "--trainer.precision 16-true: the readings, the weights"),
    "precision 64-true": (["--trainer.precision", "64-true"], "--trainer.precision 64-true: the readings, the weights"),
    "precision bf16-true": (["--trainer.precision", "bf16-true"], "precision bf16-true: the readings, the weights"),
    "no validation batches": (["--trainer.limit_val_batches", "0"], "give --data.val_fraction 0"),
    "fast_dev_run": (["--trainer.fast_dev_run", "true"], "--trainer.fast_dev_run turns off the checkpoints"),
    "no logger": (["--trainer.logger", "false"], "--trainer.logger false leaves a run no directory"),
    "no devices": (["--trainer.devices", "0"], "--trainer.devices 0: a run needs 1 or more"),
    "no gpu": (["--trainer.accelerator", "gpu"], "This torch is a CPU build"),
    "sparse optimizer": (["--model.optimizer", "SparseAdam"], "SparseAdam: cannot train the net's dense weights"),
    "input listed twice": (["--data.input_columns", "[t_u, t_u]"], "--data.input_columns names 't_u' twice"),
    "constant input": (["--data.csv_path", "constant.csv"], "column 't_u' is 5 in every training row"),
    "beyond float32 in the csv": (["--data.csv_path", "beyond_float32.csv"], "1e39 is beyond float32"),
    "targets too large": (["--data.csv_path", "huge_target.csv"], "its squared errors would overflow float32"),
    "accumulate 0 batches": (["--trainer.accumulate_grad_batches", "0"], "accumulate_grad_batches 0: it counts"),
    "validate every 0 epochs": (["--trainer.check_val_every_n_epoch", "0"], "check_val_every_n_epoch 0: it counts"),
    "validate after the last epoch": (
        ["--trainer.check_val_every_n_epoch", "50", "--trainer.max_epochs", "20"],
        "--trainer.check_val_every_n_epoch 50 with --trainer.max_epochs 20 never validates",
    ),
    "validate every 5 batches": (["--trainer.val_check_interval", "5"], "an epoch here is a batch or a few"),
    "overfit_batches": (["--trainer.overfit_batches", "3"], "Lightning swaps in its own sampler"),
    "no training batches": (["--trainer.limit_train_batches", "0"], "limit_train_batches 0 trains on nothing"),
    "zero epochs": (["--trainer.max_epochs", "0"], "--trainer.max_epochs 0: give 1 or more"),
    "min above max epochs": (["--trainer.min_epochs", "9", "--trainer.max_epochs", "5"], "min_epochs 9 is more than"),
    "negative clipping": (["--trainer.gradient_clip_val", "-1"], "gradient_clip_val -1.0: a norm, 0 or more"),
    "best is the highest loss": (["--checkpoint.mode", "max"], "--checkpoint.mode max: it watches a loss"),
    "stop at the highest loss": (["--early_stopping.mode", "max"], "--early_stopping.mode max: it watches a loss"),
    "a callback monitoring nothing logged": (
        ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.monitor=foo"],
        "ModelCheckpoint monitors 'foo'; a run logs train/loss",
    ),
    "scale 0": (["--model.normalize", "scale", "--model.scale", "0"], "--model.scale 0 makes every reading 0"),
    "a net predicting nan": (["--model.net", "tests.test_bad_input.NotANumber"], "NotANumber: its predictions on the"),
    "a net predicting integers": (["--model.net", "tests.test_bad_input.Integers"], "returns int64 predictions"),
    "a net predicting complex numbers": (["--model.net", "tests.test_bad_input.Complex"], "returns complex64 predicti"),
    "a net predicting integers, in two processes": (
        ["--config", str(DDP), "--model.net", "tests.test_bad_input.Integers"],  # said before they start
        "returns int64 predictions",
    ),
    "a net for 3 rows only": (["--model.net", "tests.test_bad_input.ThreeRows"], "fails on a (1, 1) batch of readings"),
    "batch normalisation of one row": (
        ["--model.net", "tests.test_bad_input.Normalised", "--data.batch_size", "4"],  # 9 training rows: 4, 4, 1
        "Normalised: its forward fails in training mode on a (1, 1) batch of readings, a size this run trains on",
    ),
    "a scale the loss overflows at": (
        ["--model.normalize", "scale", "--model.scale", "1e30"],
        "--model.scale 1e+30 takes the readings to 8.19e+31, where the loss is inf before any step",
    ),
    "a scale beyond float32": (["--model.normalize", "scale", "--model.scale", "1e39"], "--model.scale 1e+39: beyond"),
    "a loss that is nan at the start": (
        ["--model.loss", "PoissonNLLLoss", "--model.loss.log_input", "false"],  # log of the negative predictions
        "--model.loss PoissonNLLLoss: nan for the net's first predictions, before any step",
    ),
    "a net without parameters": (["--model.net", "torch.nn.Identity"], "Identity: it has no parameters to learn"),
    "runs' directory is a file": (["--trainer.default_root_dir", "blocked"], "cannot create the run's directory"),
    "more fields than the header": (
        ["--data.csv_path", "extra_fields.csv", "--data.val_fraction", "0"],
        "extra_fields.csv: rows have more fields than the header names (t_u, t_c)",
    ),
    "no input columns": (["--data.input_columns", "[]"], "--data.input_columns is empty"),
    "degree beyond float32": (["--model.net", "Polynomial", "--model.net.degree", "300"], "degree is 300; it must be"),
    "optimizer not in torch.optim": (["--model.optimizer", "torch.optim.Nope"], "cannot be imported (module 'torch"),
    "optimizer that is no optimizer": (["--model.optimizer", "torch.nn.ReLU"], "not the kind of class it takes"),
    "activation that is no module": (
        ["--model.net", "MLP", "--model.net.activation", "builtins.int"],
        "--model.net.activation builtins.int: not the kind of class it takes; give one such as torch.nn.ReLU",
    ),
    "zero steps": (["--trainer.max_steps", "0"], "--trainer.max_steps 0 trains on nothing"),
    "negative write interval": (["--checkpoint.write_every", "-1"], "--checkpoint.write_every -1.0: seconds"),
    "validate on nothing": (
        ["validate", "--ckpt_path", EARLIER, "--trainer.limit_val_batches", "0"],
        "--trainer.limit_val_batches 0: validate would evaluate nothing",
    ),
    "a reading to predict beyond float32": (
        ["predict", "--ckpt_path", EARLIER, "--data.predict_readings", "[1e40]"],
        "--data.predict_readings [1e+40]: every reading must be finite",
    ),
    "lr null": (["--model.optimizer.lr", "null"], "--model.optimizer.lr null: a learning rate is a positive number"),
    "no such strategy": (["--trainer.strategy", "foo"], "the trainer's options: You selected an invalid strategy"),
    "no checkpoints": (["--trainer.enable_checkpointing", "false"], "--trainer.enable_checkpointing false: a run's"),
    "readings beyond float32's digits": (["--data.csv_path", "offset.csv"], "Subtract an offset in the CSV"),
    "too few rows to split": (["--data.csv_path", "two_rows.csv"], "2 row(s) cannot be split"),
    "a net given to validate": (
        ["validate", "--ckpt_path", EARLIER, "--model.net", "MLP"],
        "--model.net: validate, test and predict use the checkpoint's net",
    ),
    # Resuming.
    "resume on another csv": (
        ["fit", "--ckpt_path", EARLIER_LAST, "--data.csv_path", "fifteen_rows.csv"],
        "the checkpoint was trained on 11 rows",
    ),
    "resume to fewer epochs than trained": (
        ["fit", "--ckpt_path", EARLIER_LAST, "--trainer.max_epochs", "3"],
        "--trainer.max_epochs 3: the checkpoint has trained",
    ),
    "resume a run that trained all its epochs": (
        ["fit", "--ckpt_path", EARLIER_LAST, "--trainer.max_epochs", "42"],
        "the run has trained all its 42 epochs (--trainer.max_epochs 42): to train on, give more",
    ),
    "resume with another net": (
        ["fit", "--ckpt_path", EARLIER_LAST, "--model.net", "MLP"],
        "--model.net MLP: a resumed run keeps the net it was trained with (Line); of the model's options only",
    ),
    "resume with another optimizer": (
        ["fit", "--ckpt_path", EARLIER_LAST, "--model.optimizer", "Adam"],
        "--model.optimizer Adam: a resumed run keeps the optimizer it was trained with (SGD)",
    ),
    "metrics not in a list": (
        ["--model.metrics", "torchmetrics.MeanAbsolutePercentageError"],
        'expected a list of Metric classes in brackets such as "[torchmetrics.MeanAbsolutePercentageError]" or null',
    ),
    "option a net lacks": (
        ["--model.net", "MLP", "--model.net.width", "3"],
        "--model.net.width: thermometer.MLP has no such option; see its options with --model.net.help thermometer.MLP",
    ),
    "resume under another name": (
        ["fit", "--ckpt_path", EARLIER_LAST, "--name", "other"],
        "--name other: a resume continues in its run's directory, lightning_logs/default/version_0; leave --name out",
    ),
    # The run's name.
    "name with a slash": (["--name", "a/b"], "--name a/b: a run's name is one directory's name, e.g. 5_14_A"),
    "name up a directory": (["--name", ".."], "--name ..: a run's name is one directory's name"),
    "name empty": (["--name", ""], "--name '': a run's name is one directory's name"),
    # Checkpoints.
    "ckpt_path missing": (["validate", "--ckpt_path", "nope.ckpt"], "--ckpt_path nope.ckpt: no such file"),
    "ckpt_path not given": (["test"], "test needs a trained model: give --ckpt_path"),
    "ckpt_path not a checkpoint": (["validate", "--ckpt_path", "garbage.ckpt"], "not a PyTorch checkpoint"),
    "ckpt_path runs code": (["predict", "--ckpt_path", "code.ckpt"], "refused, loading it would run code"),
    "ckpt_path foreign": (["validate", "--ckpt_path", "foreign.ckpt"], "not a checkpoint of this project"),
    "ckpt inputs differ": (
        ["validate", "--ckpt_path", EARLIER, "--data.csv_path", "two_inputs.csv", "--data.input_columns", "[a, b]"],
        "the checkpoint was trained with --data.input_columns ['t_u'], not ['a', 'b']: leave it out.",
    ),
    "resume from best.ckpt": (
        ["fit", "--ckpt_path", EARLIER],
        "best.ckpt holds the weights only, not the state to resume training from: give last.ckpt",
    ),
    "ckpt columns not in csv": (
        ["validate", "--ckpt_path", EARLIER, "--data.csv_path", "two_inputs.csv"],
        "two_inputs.csv: no column 't_u'; found ['a', 'b', 't_c']",
    ),
    "predict_readings not a list": (
        ["predict", "--ckpt_path", EARLIER, "--data.predict_readings", "35.7"],
        '--data.predict_readings 35.7: expected a list of numbers such as "[35.7, 100]"',
    ),
    "predict_path missing": (
        ["predict", "--ckpt_path", EARLIER, "--data.predict_path", "new.csv"],
        "new.csv: no such file. Give an existing CSV with --data.predict_path.",
    ),
}


class Anything:
    """Pickled into a checkpoint, it needs this module's code to load: weights-only loading refuses it."""


class Predicting(nn.Module):
    """A line whose forward ends with `then`: the user's nets of the cases below."""

    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs, 1)

    def then(self, t_p: torch.Tensor) -> torch.Tensor:
        return t_p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.then(self.linear(x))


class NotANumber(Predicting):
    def then(self, t_p: torch.Tensor) -> torch.Tensor:
        return t_p * float("nan")


class Integers(Predicting):
    def then(self, t_p: torch.Tensor) -> torch.Tensor:
        return t_p.round().long()


class Complex(Predicting):
    def then(self, t_p: torch.Tensor) -> torch.Tensor:
        return t_p.to(torch.complex64)


class ThreeRows(Predicting):
    def then(self, t_p: torch.Tensor) -> torch.Tensor:
        return t_p.reshape(3)  # right for a batch of 3 rows only


class Normalised(Predicting):
    """Batch normalisation: a batch of one row has no spread to normalise by, in training mode."""

    def __init__(self, n_inputs: int = 1) -> None:
        super().__init__(n_inputs)
        self.norm = nn.BatchNorm1d(1)

    def then(self, t_p: torch.Tensor) -> torch.Tensor:
        return self.norm(t_p)


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under `root` and a hash of its content."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, default_run: Path) -> Path:
    """A directory with an earlier run (a copy of the default run), and the bad files the cases point at."""
    here = tmp_path_factory.mktemp("bad_input")
    shutil.copytree(default_run, here / "lightning_logs" / "default" / "version_0")  # EARLIER's run
    for name, content in FILES.items():
        (here / name).parent.mkdir(exist_ok=True)
        (here / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (here / "unreadable.csv").chmod(0)
    torch.save({"state_dict": {}}, here / "foreign.ckpt")
    torch.save({"code": Anything()}, here / "code.ckpt")
    return here


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_message_status_2_and_nothing_written(args, message, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    if "unreadable.csv" in args and os.geteuid() == 0:  # root reads anything: fail the way a mode-000 file fails
        path_open = Path.open

        def refuse(path, *a, **kw):
            if path.name == "unreadable.csv":
                raise PermissionError(13, "Permission denied", str(path))
            return path_open(path, *a, **kw)

        monkeypatch.setattr(Path, "open", refuse)
    before = fingerprint(workdir / "lightning_logs")
    assert "default/version_0/checkpoints/best.ckpt" in before
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and message in stderr, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 2, stderr
    assert fingerprint(workdir / "lightning_logs") == before  # no new run directory, the earlier run untouched


def test_a_module_of_yours_that_is_not_python_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_module.py").write_text("def (:\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python scripts/train.py` finds the working directory's modules
    with pytest.raises(SystemExit) as exit_:
        main(["--model.net", "broken_module.Net"])
    assert exit_.value.code == 2
    said = f"error: {tmp_path / 'broken_module.py'}, line 1: invalid syntax; fix the module.\n"
    assert capsys.readouterr().err == said
    assert [p.name for p in tmp_path.iterdir()] == ["broken_module.py"]  # no run, and no bytecode of a broken file
