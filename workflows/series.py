"""Validate a patch series in one command: the suite on the base and on the patched tree, the diff,
the first patch behind each regression, and a reply ready for the list.

    make series TREE=~/linux SERIES=<message-id | mbox file | git range A..B> [BASE=<ref>] [ARGS=...]
    python -m workflows.series --tree ~/linux --series 20261126120000.1-1-dev@example.org
    python -m workflows.series --tree ~/linux --series v6.12..my-branch -k "ranges and inside"

The base is --base, else the series' base-commit: trailer (a range's start), else TREE's HEAD. The
user's checkout is never touched (only its .git/worktrees lists the cache's worktrees): the base is
built once per (base commit, config) in a git worktree under the cache, and each series is built
incrementally in a second one, a copy of the built base (workflows/basecache.py).

Exit status, as workflows.bisect: 0 no regression, 1 a regression (the reply names the first bad patch),
125 could not tell (the series does not apply, a build fails, the harness could not judge a case,
bad input). Everything lands in --out: base/ and series/ (one suite run each), patch-N/ (the bisect
steps), the pair's reports (matrix.txt, report.html, junit-*.xml, kcidb.json, ...), reply.txt and
series.json (the verdict and where the time went).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from reports import kcidb
from reports.diff import CaseKey, case_name
from reports.exits import UserError
from reports.record import Results, ResultsError, load
from suites.rulebook import DEFAULT_SPECS
from vm.kernels import parse_config
from workflows import basecache, build, commands, patchset, precheck, suite
from workflows.commands import SKIP
from workflows.patchset import git, option
from workflows.series_report import Context, render_reply, write_pair
from workflows.series_verdict import Blame, bisect, compare, selection, still_broken

REPO = suite.REPO
COMMAND = commands.command("collapse-series")


def prog() -> str:
    """make series, collapse-series or python -m workflows.series: as the user ran it."""
    return commands.invoked(COMMAND)


@dataclass
class Clock:
    """Where the time went, step by step, for the summary and series.json."""

    started: float = field(default_factory=time.monotonic)
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        began = time.monotonic()
        say(f"{label} ...")
        try:
            yield
        finally:
            self.steps.append((label, time.monotonic() - began))
            say(f"{label}: {self.steps[-1][1]:.0f} s")

    def render(self) -> list[str]:
        total = time.monotonic() - self.started
        counted = sum(seconds for _, seconds in self.steps)
        rows = [*self.steps, ("other (git, b4, diff, reports)", total - counted), ("total", total)]
        return [f"  {seconds:7.1f} s  {label}" for label, seconds in rows]


def say(text: str) -> None:
    print(f"series: {text}", file=sys.stderr, flush=True)


def run_suite(tree: Path, run_dir: Path, specs: list[str], select: str, verbose: bool) -> Results:
    """The suite on a built TREE (workflows.build.suite_command); its results."""
    command = build.suite_command(tree, run_dir, specs, select)
    subprocess.run(command, cwd=REPO, stdout=sys.stderr if verbose else subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        return load(run_dir)
    except ResultsError:
        # By hand into a scratch directory: a failed attempt's --out is removed, and must stay free for the retry.
        by_hand = [word if word != str(run_dir) else f"/tmp/{run_dir.name}-by-hand" for word in command]
        raise UserError(f"the suite wrote no results for {run_dir.name}; run it by hand to see why: {shlex.join(by_hand)}") from None


def output_dir(args: argparse.Namespace) -> Path:
    """--out, refused when it holds results: a new directory, or an empty one."""
    out = (args.out or REPO / "reports" / "out" / f"series-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} already holds results; pass a new --out")
    return out


def discard_attempt(out: Path) -> None:
    """Remove what a failed attempt wrote to OUT (empty or absent when it began, see output_dir): a
    half-finished directory is no verdict, and left behind it would refuse the retry."""
    if out.is_dir():
        shutil.rmtree(out, ignore_errors=True)


def base_target(tree: Path, base: str) -> precheck.Target:
    """The base commit's kernel as the pre-check plans it: its Makefile's version, and TREE's .config
    when it has one (the base is built with it; without one, every option is assumed)."""
    makefile = git(tree, "show", f"{base}:Makefile", what=f"{base[:12]} has no Makefile; pass {option('BASE')}<a kernel commit>")
    version = precheck.version_of(makefile)
    if version is None:
        raise UserError(f"{base[:12]}: its Makefile names no VERSION; pass {option('BASE')}<a kernel commit>")
    config = tree / ".config"
    found = parse_config(config.read_text()) if config.exists() else {}
    return precheck.Target(version, ".".join(map(str, version)), found, prerelease=precheck.prerelease_of(makefile))


def validate(args: argparse.Namespace, out: Path, clock: Clock) -> int:
    tree = args.tree.expanduser().resolve()
    if not (tree / "Makefile").exists() or not (tree / "mm").is_dir():
        raise UserError(f"{option('TREE')}{args.tree}: not a kernel source tree; pass the tree the series is for")
    repo_fix = f"{option('TREE')}{args.tree} is not a git repository; `git init` and commit it, or clone the kernel"
    git(tree, "rev-parse", "--git-dir", what=repo_fix)
    series = patchset.load(tree, args.series, out / "input")
    n = len(series.patches)
    ref = args.base or series.base_hint or "HEAD"
    why = option("BASE").strip() if args.base else "the base-commit: trailer" if series.base_hint else "TREE's HEAD"
    unknown = f"base {ref} ({why}) is not a commit of {tree}; fetch it there or pass {option('BASE').strip()}"
    base = git(tree, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what=unknown)
    # Every check before any build, as collapse-bisect's (one function): -k, --spec, vng and QEMU.
    precheck.check(base_target(tree, base), args.k, args.spec, listing=f"see collapse-bisect --list --tree {tree}")
    say(f"{n} patches ({series.kind.value}) on {base[:12]} ({why})")
    patchset.check_applies(tree, base, series, out / "input")  # before any build
    config, _ = basecache.config_of(tree)
    slot = basecache.slot(args.cache_dir, tree, base, config)
    with basecache.locked(slot):
        with clock.step("base tree"):
            trees = basecache.prepare(tree, base, args.cache_dir, args.jobs)
        copied = " + patched/ copied from it" if trees.copied else ""
        clock.steps[-1] = (f"base tree: {trees.how.value}{copied}", clock.steps[-1][1])
        say(f"base tree {trees.base}: {trees.how.value}{copied}")
        # Before the base run: a failure here (a patch that git am refuses) costs no suite run.
        commits = basecache.apply(trees.patched, base, series.mbox, series.patches)
        with clock.step("suite on base"):
            base_doc = run_suite(trees.base, out / "base", args.spec, args.k, args.verbose)

        def built_at(index: int, label: str) -> None:
            basecache.checkout(trees.patched, commits[index - 1], base)
            with clock.step(f"{label}: incremental build, patch {index}/{n}"):
                build.build(trees.patched, args.jobs)

        built_at(n, "series")
        with clock.step("suite on series"):
            new_doc = run_suite(trees.patched, out / "series", args.spec, args.k, args.verbose)
        verdict = compare(base_doc, new_doc)
        keys = [key for key, _, _ in verdict.regressions]
        narrowed = selection(keys) if keys else args.k

        def observe(index: int) -> dict[CaseKey, bool | None]:
            """A patch that does not build or run tells nothing: its keys stay unjudged, the blame a
            range, and the regression already found is still reported."""
            try:
                built_at(index, "bisect")
                with clock.step(f"bisect: suite on patch {index}/{n}"):
                    step = run_suite(trees.patched, out / f"patch-{index}", args.spec, narrowed, args.verbose)
            except UserError as err:
                say(f"bisect: patch {index}/{n} could not be judged: {err}")
                return dict.fromkeys(keys, None)
            return still_broken(step, keys)

        blame = bisect(n, keys, observe) if keys else {}
        diffs = [git(trees.patched, "diff-tree", "-p", "--binary", "--full-index", "--no-color", f"{c}^", c, raw=True) for c in commits]
        pair = write_pair(out, (out / "base", out / "series"), base, kcidb.patchset_hash(diffs))
    subject = git(tree, "log", "-1", "--format=%s", base)
    command = reproduce(tree, series.source, base, narrowed, args.spec)
    ctx = Context(series, base, subject, (pair.kernels[0], pair.kernels[-1]), list(args.spec), command)
    reply = render_reply(ctx, verdict, blame)
    (out / "reply.txt").write_text(reply)
    code = verdict.exit_status
    summary = {
        "exit": code,
        "base": base,
        "series": series.source,
        "patches": [asdict(p) for p in series.patches],
        "commits": commits,
        "base_tree": str(trees.base),
        "patched_tree": str(trees.patched),
        "base_how": trees.how.value,
        "regressions": [{"case": case_name(key), "first_bad": _first_bad(blame.get(key), n)} for key, _, _ in verdict.regressions],
        "timings": [{"step": label, "seconds": round(s, 1)} for label, s in clock.steps],
        "total_s": round(time.monotonic() - clock.started, 1),
    }
    (out / "series.json").write_text(json.dumps(summary, indent=1))
    print(reply)
    print("Time:")
    print("\n".join(clock.render()))
    print(f"Reports: {out} (reply.txt, matrix.txt, report.html, kcidb.json, series.json)")
    return code


def reproduce(tree: Path, source: str, base: str, select: str, specs: list[str]) -> list[str]:
    """The make command, in shell words, that runs this validation again (on the regressed cases)."""
    command = ["make series", f"TREE={shlex.quote(str(tree))}", f"SERIES={shlex.quote(source)}", f"BASE={base}"]
    chosen = [a for s in specs for a in ("--spec", s)] if list(specs) != list(DEFAULT_SPECS) else []
    extra = [*(["-k", select] if select else []), *chosen]
    if extra:
        command.append("ARGS='" + " ".join(f'"{a}"' if " " in a else a for a in extra) + "'")
    return command


def _first_bad(blame: Blame | None, n: int) -> str:
    if blame is None:
        return "not bisected"
    return f"{blame.bad}/{n}" if blame.exact else f"{blame.good + 1}-{blame.bad} of {n}"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would exit 2; bad input is "could not tell" here, as in workflows.bisect.
        self.exit(SKIP, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=prog(), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", required=True, help="the user's kernel tree (a git repository); its checkout is never modified")
    parser.add_argument("--series", required=True, help="a lore message-id, an mbox file, or a git range A..B of TREE")
    parser.add_argument("--base", default="", help="base ref (default: the base-commit: trailer, a range's start, else HEAD)")
    parser.add_argument("-k", default="", help="pytest -k expression choosing the cases (default: every case)")
    parser.add_argument("--spec", action="append", default=[], help=f"rule set, repeatable (default: {' '.join(DEFAULT_SPECS)})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="make -j (default: all cores)")
    parser.add_argument("--out", type=Path, help="output directory (default: reports/out/series-TIME)")
    parser.add_argument("--cache-dir", type=Path, default=build.DEFAULT_CACHE, help="cache (base worktrees under CACHE/series)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the suite's output on stderr")
    args = parser.parse_args(argv)
    if not args.tree.strip() or not args.series.strip():
        parser.error(f"pass {option('TREE')}<kernel git tree> and {option('SERIES')}<message-id | mbox file | git range>")
    args.tree = Path(args.tree)
    args.spec = list(dict.fromkeys(args.spec)) or list(DEFAULT_SPECS)
    clock = Clock()
    try:
        out = output_dir(args)
    except UserError as err:
        print(f"{prog()}: could not tell: {err}", file=sys.stderr)
        return SKIP
    try:
        return validate(args, out, clock)
    except UserError as err:
        print(f"{prog()}: could not tell: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog()}: interrupted", file=sys.stderr)
    except Exception:  # a bug, not bad input: show it, and still answer "could not tell"
        traceback.print_exc()
        print(f"{prog()}: could not tell: the harness crashed (traceback above)", file=sys.stderr)
    discard_attempt(out)
    return SKIP


def refuse(problem: str) -> int:
    print(f"{prog()}: could not tell: {problem}", file=sys.stderr)
    return SKIP


def cli() -> NoReturn:
    """The console script (pyproject.toml) and `python -m workflows.series`."""
    commands.entry(COMMAND.name, main, refuse)


if __name__ == "__main__":
    cli()
