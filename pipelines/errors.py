"""Errors a user can fix; the launcher reports them in one line, no traceback."""

__all__ = ["UserError", "InputNotFoundError"]


class UserError(ValueError):
    """A problem with a flag, an input or a dataset that the message explains."""


class InputNotFoundError(UserError, FileNotFoundError):
    """An input glob matches no file."""
