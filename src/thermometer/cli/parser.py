"""LightningCLI's parser, saying a mistyped option or value in one line and where the options are listed.

jsonargparse explains a rejected value over several lines of Python types (`Subtypes: [<class 'int'>, ...]`); a
user needs the option, the value and what it should be: `--data.batch_size abc: expected a whole number or null`.
`THERMOMETER_DEBUG=1` shows jsonargparse's own message and the traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from thermometer.errors import UsageError

HINT = "The options are listed by:"
TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "NoneType": "null",
    "list": 'a list such as "[t_u]"',
    "collections.abc.Sequence": 'a list such as "[t_u]"',
    "list[float]": 'a list of numbers such as "[35.7, 100]"',
    "list[str]": 'a list such as "[t_u]"',
}

LIST_EXAMPLES = {"Metric": "torchmetrics.MeanAbsolutePercentageError"}
"""An example of each kind of class an option takes a list of."""


def expected_words(types: str) -> list[str]:
    """`<class 'int'>, typing.Literal['a', 'b']` -> ["a whole number", "one of 'a', 'b'"]."""
    words = []
    for literal, name, generic in re.findall(r"typing\.Literal\[([^\]]*)\]|<class '([\w.]+)'>|(list\[[\w.]+\])", types):
        if literal:
            words.append(f"one of {literal}")
        elif (name or generic) in TYPE_WORDS:
            words.append(TYPE_WORDS[name or generic])
        elif generic:  # a list of classes: --model.metrics
            kind = generic.removesuffix("]").rsplit(".", 1)[-1]
            example = LIST_EXAMPLES.get(kind, f"my_module.My{kind}")
            words.append(f'a list of {kind} classes in brackets such as "[{example}]"')
    return list(dict.fromkeys(words))


LINKED = {
    "checkpoint.monitor": "--data.val_fraction: val/loss with a validation split, train/loss without",
    "early_stopping.monitor": "--data.val_fraction: val/loss with a validation split, train/loss without",
    "model.n_inputs": "--data.input_columns: one input a column",
}
"""Options set from others (`link_arguments`), and what sets them."""
WATCHING = {"checkpoint.monitor": "ModelCheckpoint", "early_stopping.monitor": "EarlyStopping"}
"""The run's own callbacks watch its loss; a callback of the user's may watch a metric."""


def plain(message: str) -> str:
    """A rejected value in jsonargparse's message, as one line; other messages as they are."""
    linked = re.search(r'(?:--> |Linked ")([\w.]+)', message)
    if linked and linked[1] in LINKED:
        own = WATCHING.get(linked[1])
        watch = f"; to watch a metric, add one: --trainer.callbacks+={own} --trainer.callbacks.monitor val/<Metric>"
        return f"--{linked[1]} is set from {LINKED[linked[1]]}: leave it out{watch if own else ''}."
    keys = re.findall(r'Parser key "([^"]+)"', message)
    if not keys:
        return message.strip()
    option = "--" + ".".join(keys)
    given = re.findall(r"Given value: (.*?)(?:\. Got value: .*)?$", message, re.MULTILINE)
    got = re.findall(r"Got value: (.*)$", message, re.MULTILINE)
    imported = re.findall(r"dot import path string: (\S+)", message)
    value = given[-1] if given else got[0] if got else imported[-1] if imported else None
    if rejected := re.search(r"Option '(\w+)' is not accepted", message):
        class_path = re.search(r"class_path='([\w.]+)'", message) or re.search(r"class_path '([\w.]+)'", message)
        owner = class_path.group(1) if class_path else "this class"
        see = f"{option}.help {owner}" if class_path else "--help"  # the full path: a user's own class too
        return f"{option}.{rejected.group(1)}: {owner} has no such option; see its options with {see}."
    problem = re.search(r"Problem with given class_path '([\w.]+)':\s*(.*)$", message, re.DOTALL)
    if problem and "Parser key" not in problem[2]:  # the class itself, not one of its arguments
        return f"{option} {problem[1]}: {class_problem(problem[2].strip().splitlines()[-1].strip())}"
    if not_a_module := re.search(r"Import path (\S+) does not correspond to a subclass of (\w+)", message):
        return f"{option} {not_a_module[1]}: not a subclass of torch.nn.{not_a_module[2]}; a net is an nn.Module."
    if wanted := re.search(r"expects a function or a callable class: (.*?)\.* Got value: (.*)$", message, re.M):
        given = re.sub(r"Namespace\(class_path='([\w.]+)'.*\)", r"\1", wanted[2])
        example = "torch.optim.Adam" if option == "--model.optimizer" else "torch.nn.ReLU"
        if "subclass of" in wanted[1]:
            return f"{option} {given}: not the kind of class it takes; give one such as {example}."
        if "No module named" in wanted[1] or "has no attribute" in wanted[1]:
            return f"{option} {given}: cannot be imported ({wanted[1]}); give a class such as {example}."
        return f"{option} {given}: {wanted[1]}; give a class such as {example}."
    subtypes = re.search(r"Subtypes: (\[.*\])$", message, re.MULTILINE)
    words = expected_words(subtypes.group(1) if subtypes else " ".join(re.findall(r"Expected a (.*)", message)))
    if not words and "dot import path" in message:
        examples = {
            "--model.optimizer": "Adam or torch.optim.Adam",
            "--model.net": "Line, Polynomial, MLP or my_module.MyNet",
        }
        example = examples.get(option, "torch.nn.ReLU")
        words = [f"a class name such as {example}"]
    shown = f"{option} {value}" if value is not None else option
    return f"{shown}: expected {' or '.join(words)}." if words else f"{shown}: {message.splitlines()[-1].strip()}"


def class_problem(reason: str) -> str:
    """Why a class given by path cannot be used, and what to give instead."""
    if reason.startswith(("No module named", "module ")) or "has no attribute" in reason:
        return (
            f"cannot be imported ({reason}); give a class by its import path, e.g. thermometer.nets.MLP, or "
            "my_module.MyNet for a my_module.py in the working directory or on PYTHONPATH."
        )
    if reason.startswith("the following arguments are required"):
        return f"{reason}; give each as --model.net.<argument> value."
    return reason


def did_you_mean(message: str, parser: LightningArgumentParser) -> str:
    """` Did you mean --trainer.max_epochs?` for an unrecognised option close to one the parser has."""
    unknown = re.search(r"unrecognized arguments: (--[\w.]+)", message)
    if not unknown:
        return ""
    try:
        options = [f"--{key}" for key in parser.get_defaults().keys()]  # noqa: SIM118 (dotted keys)
    except Exception:  # defaults the parser cannot make: no suggestion, the message stands
        return ""
    close = difflib.get_close_matches(unknown[1].split("=")[0], options, n=1, cutoff=0.8)
    return f". Did you mean {close[0]}?" if close else ""


class ThermometerParser(LightningArgumentParser):
    """LightningCLI's parser; a mistake raises `UsageError`, which `main` prints as one line and exit status 2."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        if os.environ.get("THERMOMETER_DEBUG"):
            raise UsageError(message) from ex
        if HINT in message:  # a value in a --config file, already said by the parser that read it
            raise UsageError(message.removeprefix('Parser key "config": ')) from None
        parser = getattr(ex, "subcommand_parser", None) or self
        command = " ".join([sys.argv[0], *parser.prog.split()[1:]]).replace(" [options]", "")
        raise UsageError(f"{plain(message)}{did_you_mean(message, parser)}\n  {HINT} python {command} --help") from None
