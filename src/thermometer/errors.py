"""Failures a user can fix: shown as one message, never as a traceback."""


class UsageError(ValueError):
    """A file, value or option that cannot be used; the message says which and how to fix it."""
