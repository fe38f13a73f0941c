"""What a script does before its `main` exists: seconds of imports (torch, Lightning), which a signal may stop."""

import importlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

WHAT = ["anything"]
"""What had not begun yet, for the one line a signal gets."""


def stop_importing(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM while importing: say so in one line and end now, with nothing written.

    Not by raising KeyboardInterrupt: inside a library's import (numpy's, torch's C++) it may be swallowed, leaving
    a half-imported module behind, or end the process with a C++ error.
    """
    os.write(sys.stderr.fileno(), f"\nInterrupted before {WHAT[0]} began; nothing was written.\n".encode())
    os._exit(128 + signum)


def load_main(module: str, what: str) -> Callable[[], object]:
    """`module.main`, imported; Ctrl-C or SIGTERM meanwhile ends the process in one line, status 128 + its number."""
    WHAT[0] = what
    signal.signal(signal.SIGINT, stop_importing)
    signal.signal(signal.SIGTERM, stop_importing)
    try:
        return importlib.import_module(module).main
    finally:  # `main` takes the signals from here
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
