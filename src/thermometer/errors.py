"""Failures a user can fix: shown as one message, never as a traceback."""


class UsageError(ValueError):
    """A file, value or option that cannot be used; the message says which and how to fix it."""


class Diverged(RuntimeError):
    """The loss became inf or NaN; the message says when and what to change."""


class Interrupted(RuntimeError):
    """Training was stopped by a signal at the end of an epoch; `last.ckpt` resumes it."""

    def __init__(self, signal: int) -> None:
        super().__init__(f"interrupted by signal {signal}")
        self.signal = signal
