"""Errors the user can fix, and the exit codes every command of the project shares."""

from __future__ import annotations

from enum import IntEnum


class UserError(Exception):
    """Bad input or a missing prerequisite; the message says what to do."""


class Exit(IntEnum):
    """One map for the suite (pytest) and every command; 2, 4 and 5 are pytest's own meanings.
    workflows.bisect and workflows.series answer git bisect's protocol instead (0 good, 1 bad, 125 cannot tell)."""

    CLEAN = 0  # every case judged: no regression, no infrastructure error
    REGRESSION = 1  # a kernel broke an agreed rule (a FAIL of the fully checked spec)
    INTERRUPTED = 2  # Ctrl-C or SIGTERM (pytest's); what finished is reported
    INFRASTRUCTURE = 3  # no regression, but the harness could not judge some cases (ERROR)
    USAGE = 4  # bad input: one line naming the fix (pytest's usage error)
    NO_CASES = 5  # the selection holds no case (pytest's)


def judged_exit(regressions: bool, infrastructure: bool) -> Exit:
    """The one precedence every command's status follows (a run, a diff, a series): a regression
    outranks harness errors, which outrank a clean result."""
    return Exit.REGRESSION if regressions else Exit.INFRASTRUCTURE if infrastructure else Exit.CLEAN
