"""Failures a user can fix: shown as one message, never as a traceback."""


class UsageError(ValueError):
    """A file, value or option that cannot be used; the message says which and how to fix it."""


class Diverged(RuntimeError):
    """The loss became inf or NaN; the message says when and what to change."""
