"""What collapse-bisect and collapse-series check before anything is built: the specs, the -k
expression and the cases it selects on the kernel to be built, and the tools a run needs. A mistake
here costs one line, never a kernel build and a suite run that end in "the suite wrote no results"."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reports.exits import UserError
from workflows import suite

SUITE_NAME = suite.SUITE.rsplit("/", 1)[-1]
VERSION_FIELDS = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL) = (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Target:
    """The kernel a selection is planned on, before it is built: its version, the release string the
    case ids start with, and its .config when known (empty: every option assumed)."""

    version: tuple[int, int, int]
    label: str
    config: dict[str, str] = field(default_factory=dict)
    tree: Path | None = None  # a checkout whose HEAD is the kernel: its git history decides the changes it has
    prerelease: bool = False  # an -rc (the Makefile's EXTRAVERSION), as the built kernel's release will say


RC = re.compile(r"^EXTRAVERSION = -rc\d+$", re.MULTILINE)


def prerelease_of(makefile: str) -> bool:
    """An -rc tree (EXTRAVERSION = -rcN): before its release, which may hold later changes."""
    return bool(RC.search(makefile[:4096]))


def version_of(makefile: str) -> tuple[int, int, int] | None:
    """VERSION.PATCHLEVEL.SUBLEVEL from a kernel Makefile's head; None if it has none."""
    fields = dict(VERSION_FIELDS.findall(makefile[:4096]))
    if len(fields) < 3:
        return None
    return int(fields["VERSION"]), int(fields["PATCHLEVEL"]), int(fields["SUBLEVEL"])


def tools() -> None:
    """vng and QEMU, which every suite run needs: missing, they would fail the run after the build."""
    from vm import accel, vng

    if shutil.which("vng", path=vng.environment()["PATH"]) is None:
        raise UserError("vng (virtme-ng) not found on PATH nor beside this Python; run from the project's tox env (make help lists them)")
    accel.require_qemu()


def check(target: Target, select: str, specs: Sequence[str], *, listing: str, run: bool = True) -> list[str]:
    """The ids of the cases -k SELECT picks on TARGET, as pytest would name them, after checking the
    specs, the expression and (when the cases are to RUN) the tools; UserError, one line, on the first
    problem. LISTING says where the user can see the cases."""
    # pytest's own -k grammar and matcher, so the pre-check can never disagree with the run it
    # guards; they are not public API, and requirements.txt pins pytest (9.1.1) for that reason.
    from _pytest.mark import KeywordMatcher
    from _pytest.mark.expression import Expression

    from suites import rulebook

    unknown = [s for s in specs if s not in rulebook.SPECS]
    if unknown:
        raise UserError(f"--spec {', '.join(unknown)}: unknown; the specs are {', '.join(rulebook.SPECS)}")
    try:
        expression = Expression.compile(select) if select else None
    except SyntaxError as err:
        raise UserError(f'-k {select!r}: not a pytest -k expression ({err.msg}); e.g. -k "ranges and inside"') from None
    if run:
        tools()
    book = rulebook.load()
    primary, *others = specs
    unbuilt = rulebook.UnbuiltKernel(
        target.label, target.label, target.version, target.config, tree=target.tree, prerelease=target.prerelease
    )
    kernel = dataclasses.replace(unbuilt, presence=book.presence(unbuilt.facts))  # decided once, not per grid
    ids = []
    for test in book.tests:
        planned = rulebook.plan(book, test, kernel, primary)
        for spec in others:
            planned += rulebook.plan(book, test, kernel, spec, beside=primary)
        for case in planned:
            name = f"test_{test}[{case.id}]"
            names = {"suites", SUITE_NAME, name, "xdist_group"}  # a SKIP case would add "skip": never run, so left out
            if case.skip is None and (expression is None or expression.evaluate(KeywordMatcher(names))):
                ids.append(name)
    if not ids:
        where = f"{listing}, or docs/rules.md for the grids"
        raise UserError(f"-k {select!r} selects no case that runs on {target.label} ({where})")
    return ids
