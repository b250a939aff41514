"""A `git bisect run` command: build the tree, run chosen cases on it, answer good, bad or skip.

    cd ~/linux
    git bisect start BAD GOOD
    git bisect run /path/to/collapse-conformance/.tox/matrix/bin/collapse-bisect -k "ranges and inside"

`collapse-bisect` is installed in every tox env of the project (an editable install, see
pyproject.toml); `.../.tox/matrix/bin/python -m workflows.bisect` is the same command, from any directory.
Check a selection first with `collapse-bisect --list -k ...`: it needs no built kernel.

Exit status, as git bisect wants it, from each case's stored class: 1 (bad) when a case is a
regression (a FAIL of the fully checked spec); else 125 (skip this commit) when a case is an
infrastructure error (boot, agent or set-up failure: the kernel state is unknown) or no case passed;
else 0 (good). Documentation discrepancies and other specs' FAILs are not bad. Every start-up
error (bad arguments, not a kernel tree, a -k that selects nothing, a tree that does not configure
or build) is 125 too, never 1, 255 or anything above 127, which would mislead or abort the bisection.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from reports.exits import Exit, UserError  # standard library only, too
from workflows import commands, suite  # standard library only: importing them cannot break the 125 guarantee
from workflows.commands import BAD, GOOD, SKIP

if TYPE_CHECKING:
    from reports.record import Results
    from workflows.precheck import Target

BISECT_ANSWER = {Exit.REGRESSION: BAD, Exit.INFRASTRUCTURE: SKIP, Exit.CLEAN: GOOD}  # reports.exits.judged_exit's, for git bisect run
REPO = suite.REPO
COMMAND = commands.command("collapse-bisect")


def prog() -> str:
    """collapse-bisect, or python -m workflows.bisect: as the user ran it."""
    return commands.invoked(COMMAND)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse exits 2, which git bisect would take for "bad".
        self.exit(SKIP, f"{self.prog}: skip: {message} (see {self.prog} --help)\n")


def verdict_of(results: Results) -> tuple[int, str]:
    """The bisect answer from the classes a run stored (reports.record), with a one-line reason."""
    from reports.record import CaseClass  # here, not at the top: a broken install must still exit 125

    classes = results.classes()
    summary = ", ".join(f"{n} {c}" for c, n in sorted(classes.items())) or "no case"
    if classes[CaseClass.REGRESSION]:
        first = next(case for case in results.cases if case.case_class is CaseClass.REGRESSION)
        return BAD, f"bad: {summary}; first: {first.test}[{first.case_id}] {first.message}"
    if classes[CaseClass.INFRASTRUCTURE]:
        return SKIP, f"skip (harness or boot error, kernel state unknown): {summary}"
    if not classes[CaseClass.PASS]:
        return SKIP, f"skip (no case passed): {summary}"
    return GOOD, f"good: {summary}"


def target_of(tree: Path) -> Target:
    """The tree's version (from its Makefile, so an unconfigured tree will do), its likely release
    string, which the case ids start with (the last build's, else VERSION.PATCHLEVEL.SUBLEVEL), and
    its .config when it has one."""
    from vm.kernels import parse_config
    from workflows.precheck import Target, prerelease_of, version_of

    makefile = tree / "Makefile"
    text = makefile.read_text(errors="replace") if makefile.exists() else ""
    version = version_of(text)
    if version is None or not (tree / "mm" / "khugepaged.c").exists():
        raise UserError(f"{tree}: not a kernel tree (no Makefile VERSION or mm/khugepaged.c); run from one, or pass --tree")
    built = tree / "include" / "config" / "kernel.release"
    label = built.read_text().strip() if built.exists() else ".".join(map(str, version))
    config_file = tree / ".config"
    config = parse_config(config_file.read_text()) if config_file.exists() else {}
    return Target(version, label, config, tree=tree, prerelease=prerelease_of(text))


def run(args: argparse.Namespace) -> tuple[int, str]:
    try:
        from workflows import build, precheck  # here, not at the top: a broken install must still exit 125
    except ImportError as err:
        raise UserError(f"cannot import the suite ({err}); run {prog()} from the project's tox env (make help lists them)") from None
    tree = args.tree.expanduser().resolve()
    # Every check before any build (shared with collapse-series): a typo costs one line, not a build.
    cases = precheck.check(target_of(tree), args.k, args.spec, listing=f"see {prog()} --list", run=not args.list)
    if args.list:
        print("\n".join(cases))
        return GOOD, f"{len(cases)} cases selected on {tree.name}"
    print(f"{prog()}: {len(cases)} cases selected in {tree}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        if not (tree / ".config").exists():
            build.configure(tree)
        if not args.no_build:
            build.build(tree, args.jobs)
    except UserError as err:
        return SKIP, f"skip (build failed): {err}"
    built = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="collapse-bisect-") as tmp:
        command = build.suite_command(tree, Path(tmp), args.spec, args.k)
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if args.verbose:
            sys.stderr.write(proc.stdout + proc.stderr)
        timing = f"(build {built - started:.0f} s, suite {time.monotonic() - built:.0f} s)"
        results = Path(tmp) / "results.json"
        if not results.exists():
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            return SKIP, f"skip (the suite wrote no results: {last}) {timing}"
        from reports.record import ResultsError, load

        try:
            code, reason = verdict_of(load(results))
        except ResultsError as err:
            return SKIP, f"skip ({err}) {timing}"
        return code, f"{reason} {timing}"


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=prog(), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path.cwd(), help="the kernel tree (default: the current directory)")
    parser.add_argument("-k", default="", help="pytest -k expression choosing the cases (default: every case)")
    parser.add_argument("--spec", action="append", default=[], help="rule set, repeatable (default: upstream)")
    parser.add_argument("--list", action="store_true", help="print the cases -k selects on the tree and exit (no build)")
    parser.add_argument("--no-build", action="store_true", help="take the tree as built")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="make -j (default: all cores)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output on stderr")
    args = parser.parse_args(argv)
    args.spec = list(dict.fromkeys(args.spec)) or ["upstream"]
    try:
        code, reason = run(args)
    except UserError as err:  # before any build: bad input, a missing tool, a selection of no case
        code, reason = SKIP, f"skip: {err}"
    except BaseException:  # whatever happens, git bisect must get 125, not 1 or 255
        traceback.print_exc()
        code, reason = SKIP, "skip (harness crashed, see the traceback above)"
    print(f"{prog()}: {reason}", file=sys.stderr)
    return code


def refuse(problem: str) -> int:
    print(f"{prog()}: skip: {problem}", file=sys.stderr)
    return SKIP


def cli() -> NoReturn:
    """The console script (pyproject.toml) and `python -m workflows.bisect`."""
    commands.entry(COMMAND.name, main, refuse)


if __name__ == "__main__":
    cli()
