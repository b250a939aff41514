"""Errors the user can fix, and the exit codes every command of the project shares."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn


class UserError(Exception):
    """Bad input or a missing prerequisite; the message says what to do."""


class Exit(IntEnum):
    """One map for the suite (pytest) and every command; 2, 4 and 5 are pytest's own meanings.
    workflows.bisect and workflows.series answer git bisect's protocol instead (0 good, 1 bad, 125 cannot tell)."""

    CLEAN = 0  # every planned case judged: no regression, no infrastructure error
    REGRESSION = 1  # a kernel broke an agreed rule (a FAIL of the fully checked spec)
    INTERRUPTED = 2  # Ctrl-C or SIGTERM (pytest's); what finished is reported
    INFRASTRUCTURE = 3  # no regression, but the harness could not judge some cases (ERROR)
    USAGE = 4  # bad input: one line naming the fix (pytest's usage error)
    NO_CASES = 5  # the selection holds no case (pytest's)
    INCOMPLETE = 6  # no regression, but the run did not finish: kernels, cases or records are missing
    NOTHING_COMPARED = 7  # a diff found no kernel pair to compare
    CLOSED_PIPE = 141  # stdout was closed early (`| head -1`): as a shell command killed by SIGPIPE


def judged_exit(regressions: bool, infrastructure: bool, incomplete: bool = False) -> Exit:
    """The one precedence every command's status follows (a run, a diff, a series): a regression
    outranks a run that did not finish, which outranks harness errors, which outrank a clean result."""
    if regressions:
        return Exit.REGRESSION
    if incomplete:
        return Exit.INCOMPLETE
    return Exit.INFRASTRUCTURE if infrastructure else Exit.CLEAN


class Parser(argparse.ArgumentParser):
    """argparse with the map's bad-input status (4) instead of argparse's 2, which the map keeps
    for an interrupted run."""

    usage_status: int = Exit.USAGE

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_status, f"{self.prog}: error: {message}\n")


def run_command(main: Callable[[], int]) -> NoReturn:
    """Every console entry point's last line: MAIN's status. A closed stdout (`| head -1`) is neither
    a traceback nor a verdict (the status was not all printed), and Ctrl-C is the map's INTERRUPTED."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = Exit.CLOSED_PIPE
    except KeyboardInterrupt:
        status = Exit.INTERRUPTED
    sys.exit(status)
