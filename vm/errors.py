"""Errors the user can fix: printed as one line naming the fix, never as a traceback."""


class UserError(Exception):
    """Bad input or a missing prerequisite; the message says what to do."""
