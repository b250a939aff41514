"""A `git bisect run` command: build the tree, run chosen cases on it, answer good, bad or skip.

    git bisect run python -m vm.bisect -k "eligibility and never"        # in the kernel tree
    git bisect run /path/to/collapse-conformance/.tox/matrix/bin/python -m vm.bisect --tree . -k C8

Exit status, as git bisect wants it: 0 when every selected case passes (SKIPs allowed), 1 when one
FAILs, 125 (skip this commit) when the tree does not build or configure, a VM does not boot, a case
ERRORs or no case ran. Never 255 nor anything above 127, which would abort the bisection.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

GOOD, BAD, SKIP = 0, 1, 125
REPO = Path(__file__).resolve().parent.parent


def verdict_of(results: dict[str, object]) -> tuple[int, str]:
    """The bisect answer for a run's results.json, with a one-line reason."""
    cases = results.get("cases", [])
    counts: dict[str, int] = {}
    for case in cases:  # type: ignore[union-attr]
        counts[str(case["verdict"])] = counts.get(str(case["verdict"]), 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no case"
    if counts.get("FAIL"):
        return BAD, f"bad: {summary}"
    if counts.get("ERROR"):
        return SKIP, f"skip (harness or boot error, kernel state unknown): {summary}"
    if not counts.get("PASS"):
        return SKIP, f"skip (nothing ran): {summary}"
    return GOOD, f"good: {summary}"


def run(args: argparse.Namespace) -> tuple[int, str]:
    from vm import build  # imported here: an import failure must still exit 125
    from vm.errors import UserError

    tree = args.tree.resolve()
    try:
        if not (tree / ".config").exists():
            build.configure(tree)
        if not args.no_build:
            build.build(tree, args.jobs)
    except UserError as err:
        return SKIP, f"skip (build failed): {err}"
    with tempfile.TemporaryDirectory(prefix="collapse-bisect-") as tmp:
        command = build.suite_command(tree, Path(tmp), args.spec, args.k)
        subprocess.run(command, cwd=REPO, stdout=sys.stderr if args.verbose else subprocess.DEVNULL, stderr=subprocess.STDOUT)
        results = Path(tmp) / "results.json"
        if not results.exists():
            return SKIP, "skip (the suite wrote no results: bad selection, or the kernel could not be resolved)"
        return verdict_of(json.loads(results.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vm.bisect", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path.cwd(), help="the kernel tree (default: the current directory)")
    parser.add_argument("-k", default="", help="pytest -k expression choosing the cases (default: every case)")
    parser.add_argument("--spec", action="append", default=[], help="rule set (default: upstream)")
    parser.add_argument("--no-build", action="store_true", help="take the tree as built")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="make -j (default: all cores)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the build and pytest output on stderr")
    args = parser.parse_args(argv)
    args.spec = args.spec or ["upstream"]
    try:
        code, reason = run(args)
    except BaseException:  # whatever happens, git bisect must get 125, not 255
        traceback.print_exc()
        code, reason = SKIP, "skip (harness crashed, see the traceback above)"
    print(f"vm.bisect: {reason}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
