"""Every entry point of the project in one typed table (the command, what it does, its exit statuses),
how a running command names itself and its options (`make series` says BASE=, `collapse-series`
says --base), the check that the imported code is the checkout the user is in, and the one wrapper
every `python -m workflows.X` and console script ends with.

    python -m workflows.commands                 # the exit-code table, as Markdown
    python -m workflows.commands --write-docs    # write it to docs/exit-codes.md

Standard library and reports.exits only: collapse-bisect imports this before anything that a
broken install could fail to import.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from reports.exits import Exit, Parser, run_command

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "exit-codes.md"
# The Makefile sets this to the target it runs (make series -> "series"), so that a command run
# through make names itself `make series` and its options as make variables (BASE=, not --base).
MAKE_TARGET = "COLLAPSE_MAKE_TARGET"
# git bisect run's protocol, which collapse-bisect and collapse-series answer instead of the map.
GOOD, BAD, SKIP = 0, 1, 125

MEANING: dict[Exit, str] = {
    Exit.CLEAN: "every planned case judged: no regression, no infrastructure error",
    Exit.REGRESSION: "a kernel broke an agreed rule (a FAIL of the fully checked spec)",
    Exit.INTERRUPTED: "Ctrl-C or SIGTERM; what finished is reported",
    Exit.INFRASTRUCTURE: "no regression, but the harness could not judge some cases (ERROR)",
    Exit.USAGE: "bad input: one line on stderr naming the fix",
    Exit.NO_CASES: "the selection holds no case",
    Exit.INCOMPLETE: "no regression, but the run did not finish: kernels, cases or records are missing",
    Exit.NOTHING_COMPARED: "a diff found no kernel pair to compare",
    Exit.CLOSED_PIPE: "stdout was closed early (`| head -1`), as a shell command killed by SIGPIPE",
}


@dataclass(frozen=True)
class Status:
    code: int
    meaning: str


@dataclass(frozen=True)
class Command:
    name: str  # as the user types it
    does: str
    exits: tuple[Status, ...]
    module: str = ""  # `python -m MODULE` runs it too ("" for none)
    script: str = ""  # its console script (pyproject.toml), "" for none
    target: str = ""  # the make target that runs it, "" for none


def _map(*codes: Exit, **notes: str) -> tuple[Status, ...]:
    """Exit members with the map's meaning, or a command's own (keyword: the member's name)."""
    return tuple(Status(int(code), notes.get(code.name, MEANING[code])) for code in codes)


BISECT_EXITS = (
    Status(GOOD, "good: every selected case passed or was not the kernel's fault"),
    Status(BAD, "bad: a selected case is a regression"),
    Status(SKIP, "skip: cannot tell (harness or boot error, build failed, no case passed, or bad input: one line naming the fix)"),
)

COMMANDS: tuple[Command, ...] = (
    Command(
        "pytest suites/test_collapse.py",
        "the suite: the rule grids on each --kernel, in VMs (make matrix, make check)",
        _map(Exit.CLEAN, Exit.REGRESSION, Exit.INTERRUPTED, Exit.INFRASTRUCTURE, Exit.USAGE, Exit.NO_CASES, Exit.INCOMPLETE),
    ),
    Command(
        "python -m reports",
        "render a run's reports again, diff two runs, merge runs",
        _map(
            Exit.CLEAN,
            Exit.REGRESSION,
            Exit.INTERRUPTED,
            Exit.INFRASTRUCTURE,
            Exit.USAGE,
            Exit.INCOMPLETE,
            Exit.NOTHING_COMPARED,
            Exit.CLOSED_PIPE,
        ),
        module="reports",
    ),
    Command(
        "python -m reports kcidb-submit",
        "send a run's KCIDB report to KernelCI over HTTPS (KCIDB_ORIGIN, KCIDB_TOKEN, KCIDB_REST), or --dry-run: validate it",
        _map(
            Exit.CLEAN,
            Exit.INTERRUPTED,
            Exit.INFRASTRUCTURE,
            Exit.USAGE,
            Exit.CLOSED_PIPE,
            CLEAN="the endpoint accepted the report (--dry-run: it validates against kcidb-io's latest schema); not the run's verdict",
            INFRASTRUCTURE="the endpoint could not be reached, failed (HTTP 5xx) or gave no receipt",
            USAGE="bad input: KCIDB_ORIGIN or KCIDB_TOKEN missing or wrong, a report the schema rejects, or a refusal (HTTP 4xx)",
        ),
    ),
    Command(
        "python -m workflows.build",
        "configure and build a test kernel (Debian's linux-source, or --src TREE)",
        _map(Exit.CLEAN, Exit.INTERRUPTED, Exit.USAGE, Exit.CLOSED_PIPE, USAGE="bad input, or the tree does not configure or build"),
        module="workflows.build",
        target="kernel",
    ),
    Command(
        "python -m workflows.mutants",
        "mutation testing: each patch of suites/mutants/ built and run through the suite",
        _map(
            Exit.CLEAN,
            Exit.REGRESSION,
            Exit.INTERRUPTED,
            Exit.USAGE,
            Exit.CLOSED_PIPE,
            CLEAN="every built mutant killed, or explained in suites/mutants/survivors.toml",
            REGRESSION="a built mutant survived that survivors.toml does not explain",
            USAGE="bad input, or the tree does not configure, build or run the suite",
        ),
        module="workflows.mutants",
        target="mutants",
    ),
    Command(
        "python -m workflows.bench",
        "speed benchmark: the matrix against the boot-time floor, and one VM per case",
        _map(
            Exit.CLEAN,
            Exit.INTERRUPTED,
            Exit.INFRASTRUCTURE,
            Exit.USAGE,
            Exit.NO_CASES,
            Exit.CLOSED_PIPE,
            CLEAN="the figures are printed (the benchmark asserts nothing)",
            INFRASTRUCTURE="the matrix run wrote no results",
            USAGE="bad input: an unknown --grid, a --profile run without results.json",
            NO_CASES="no case ran (all skipped or deselected)",
        ),
        module="workflows.bench",
        target="bench",
    ),
    Command(
        "collapse-bisect",
        "a `git bisect run` command: build the tree, run the chosen cases, answer good, bad or skip",
        (*BISECT_EXITS, Status(int(Exit.CLOSED_PIPE), MEANING[Exit.CLOSED_PIPE] + " (git bisect run then stops)")),
        module="workflows.bisect",
        script="collapse-bisect",
    ),
    Command(
        "collapse-series",
        "validate a patch series: base vs patched tree, the first bad patch, a reply for the list",
        (
            Status(GOOD, "no regression"),
            Status(BAD, "a regression; the reply names the first bad patch"),
            Status(SKIP, "could not tell: the series does not apply, a build fails, a case could not be judged, or bad input"),
            Status(int(Exit.CLOSED_PIPE), MEANING[Exit.CLOSED_PIPE]),
        ),
        module="workflows.series",
        script="collapse-series",
        target="series",
    ),
    Command(
        "python -m workflows.hosts",
        "prepare hosts for make matrix HOSTS=...: over ssh, this commit at the same path, then make host there",
        _map(
            Exit.CLEAN,
            Exit.INTERRUPTED,
            Exit.INFRASTRUCTURE,
            Exit.USAGE,
            Exit.CLOSED_PIPE,
            CLEAN="every host has the commit at the path (and its host packages and .tox/matrix)",
            INFRASTRUCTURE="a step failed on a host (ssh, git or make there); the line before says which",
        ),
        module="workflows.hosts",
    ),
    Command(
        "python -m workflows.commands",
        "this table, as Markdown (--write-docs: into docs/exit-codes.md)",
        _map(Exit.CLEAN, Exit.USAGE, Exit.CLOSED_PIPE),
        module="workflows.commands",
    ),
)

MAKE_NOTE = (
    "make itself exits 0 when the target's command succeeded and 2 when anything failed, whatever the "
    "command's status: make's last line says which (`make: *** [Makefile:NN: matrix] Error 1`), and so "
    "does tox's (`matrix: FAIL code 1`). For the exact status run the tox env's command itself, e.g. "
    "`.tox/matrix/bin/pytest suites/test_collapse.py ...` or `.tox/series/bin/collapse-series ...`. "
    "make refuses, before anything runs, a target it does not know, a variable no target reads, a "
    "variable the target does not read, and a KERNELS value that is neither debian:SUITE nor an existing path."
)


def command(name: str) -> Command:
    return next(c for c in COMMANDS if name in (c.name, c.module, c.script, c.target))


def cell(text: str) -> str:
    """TEXT in a Markdown table cell: a pipe would end the cell."""
    return text.replace("|", "\\|")


def markdown() -> str:
    """The exit-code map and every entry point's statuses, as Markdown (docs/exit-codes.md)."""
    lines = [
        "<!-- generated by `python -m workflows.commands --write-docs` from workflows/commands.py; do not edit -->",
        "# Exit codes",
        "",
        "One map (`reports.exits.Exit`) for the suite and every command. collapse-bisect and collapse-series",
        "answer git bisect's protocol instead (0 good, 1 bad, 125 cannot tell), bad input included, so that",
        "a bisection is never misled.",
        "",
        "| code | name | meaning |",
        "|---:|---|---|",
        *(f"| {code.value} | {code.name} | {cell(MEANING[code])} |" for code in Exit),
        "",
        "## Per command",
        "",
    ]
    for entry in COMMANDS:
        runs = [f"`python -m {entry.module}`" if entry.module and entry.name != f"python -m {entry.module}" else ""]
        runs += [f"`make {entry.target}`" if entry.target else ""]
        also = ", ".join(r for r in runs if r)
        lines += [f"### `{entry.name}`", "", entry.does + (f" (also: {also})" if also else "") + ".", ""]
        lines += ["| code | when |", "|---:|---|", *(f"| {s.code} | {cell(s.meaning)} |" for s in entry.exits), ""]
    lines += ["## make targets", "", MAKE_NOTE, ""]
    return "\n".join(lines)


def jobs(text: str) -> int:
    """--jobs: make -j N, N >= 1 (make -j0 is an error only once the build starts)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


# ------------------------------------------------------------------ how the running command is named


def via_make(target: str) -> bool:
    """Whether this process is `make TARGET` (the Makefile sets MAKE_TARGET for the tox env it runs)."""
    return bool(target) and os.environ.get(MAKE_TARGET) == target


def invoked(entry: Command) -> str:
    """The command as the user typed it: `make series`, `collapse-series` or `python -m workflows.series`."""
    if via_make(entry.target):
        return f"make {entry.target}"
    if entry.script and Path(sys.argv[0]).name == entry.script:
        return entry.script
    return f"python -m {entry.module}" if entry.module else entry.name


def option(entry: Command, variable: str) -> str:
    """An option as the user spells it: `BASE=` through make, `--base ` otherwise (a value follows)."""
    return f"{variable}=" if via_make(entry.target) else f"--{variable.lower()} "


# ------------------------------------------------------------------ which code runs


def is_checkout(path: Path) -> bool:
    return all((path / name).exists() for name in ("tox.ini", "conftest.py", "workflows/commands.py"))


def installation_problem(repo: Path = REPO, cwd: Path | None = None) -> str | None:
    """Why the imported code cannot serve this run, in one line; None when it can.

    A plain `pip install .` copies the packages without the suite's conftest.py and tox.ini; an
    editable install of another clone runs (and writes into) that clone from inside this one."""
    if not is_checkout(repo):
        return (
            f"installed without its checkout ({repo}); install the project editable "
            "(pip install -e /path/to/collapse-conformance) or use its tox envs (make help)"
        )
    here = (cwd or Path.cwd()).resolve()
    checkout = next((d for d in (here, *here.parents) if is_checkout(d)), None)
    if checkout is not None and checkout != repo.resolve():
        return (
            f"this is the checkout {checkout}, but the installed code is {repo}'s; "
            f"pip install -e {checkout} (or use this checkout's tox envs: make help)"
        )
    return None


def entry(name: str, main: Callable[[], int], failure: Callable[[str], int] | None = None) -> NoReturn:
    """Every console script's and `python -m` module's last line: refuse an installation that would
    run other code than the user's checkout (one line, the command's bad-input status), then MAIN under
    reports.exits.run_command. FAILURE prints and answers a refusal in the command's own words."""
    problem = installation_problem()
    if problem is not None:
        if failure is not None:
            sys.exit(failure(problem))
        print(f"{invoked(command(name))}: error: {problem}", file=sys.stderr)
        sys.exit(Exit.USAGE)
    run_command(main)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m workflows.commands", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-docs", action="store_true", help=f"write the table to {DOCS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write_docs:
        DOCS.write_text(text)
        print(f"wrote {DOCS}")
    else:
        print(text, end="")
    return Exit.CLEAN


if __name__ == "__main__":
    entry("workflows.commands", main)
