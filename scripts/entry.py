"""What a script does before its `main` exists: seconds of imports (torch, Lightning), which a signal may stop."""

import importlib
import signal
import sys
from collections.abc import Callable
from types import FrameType


def stop_importing(signum: int, frame: FrameType | None) -> None:
    """SIGTERM while importing: stop as Ctrl-C does (by default it would end the process without a word)."""
    raise KeyboardInterrupt(signum)


def load_main(module: str, what: str) -> Callable[[], object]:
    """`module.main`, imported; Ctrl-C or SIGTERM meanwhile ends the process in one line, status 128 + its number."""
    signal.signal(signal.SIGTERM, stop_importing)
    try:
        return importlib.import_module(module).main
    except BaseException as error:  # a library being imported may wrap the KeyboardInterrupt in its own error
        stop: BaseException | None = error
        while stop is not None and not isinstance(stop, KeyboardInterrupt):
            stop = stop.__context__
        if stop is None:
            raise
        signum = stop.args[0] if stop.args else signal.SIGINT
        print(f"\nInterrupted before {what} began; nothing was written.", file=sys.stderr)
        sys.exit(128 + signum)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # `main` takes the signals from here
