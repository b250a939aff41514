"""python -m reports: render a run's reports, diff two runs (or the kernels of one), merge runs.

python -m reports render RUN          every format again, from RUN/results.jsonl; prints the matrix
python -m reports diff BASE NEW       regressions, fixes, new and removed cases; exit 1 on a regression
python -m reports diff RUN            along RUN's kernel order: last kernel passing, first failing
python -m reports merge RUN... --out DIR   one matrix from several runs of the same rule book
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reports import render_run
from reports.diff import diff, render_across, render_diff
from reports.matrix import REGRESSION, failures
from reports.merge import MergeError, merge
from reports.results import load

OUT = Path(__file__).resolve().parent / "out"


def _results(path: Path) -> dict[str, object]:
    """results.json of a run directory or the file itself; a bad path is one line naming the fix."""
    target = path / "results.json" if path.is_dir() else path
    if not target.exists():
        raise SystemExit(f"error: {path}: no results.json; pass a run directory such as reports/out/latest or a results.json")
    return load(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="rebuild every report of a run from its results")
    render.add_argument("run_dir", type=Path, help="a run directory under reports/out/")
    compare = sub.add_parser("diff", help="BASE NEW: verdict changes per kernel pair; RUN: changes along its kernels")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="one or two run directories or results.json files")
    combine = sub.add_parser("merge", help="combine runs made with the same rule book")
    combine.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories or results.json files")
    combine.add_argument("--out", type=Path, default=None, help="merged run directory (default: reports/out/merged-TIME)")
    args = parser.parse_args(argv)
    if args.command == "render":
        previous = _results(args.run_dir)
        document = render_run(args.run_dir.resolve(), previous["run"])  # type: ignore[arg-type]
        print((args.run_dir / "matrix.txt").read_text(), end="")
        return 1 if any(c["class"] == REGRESSION for c in failures(document)) else 0
    if args.command == "diff":
        if len(args.runs) > 2:
            parser.error("diff takes BASE NEW, or one RUN")
        if len(args.runs) == 1:
            print(render_across(_results(args.runs[0])), end="")
            return 0
        base, new = (_results(p) for p in args.runs)
        pairs = diff(base, new)
        print(render_diff(pairs, new), end="")
        return 1 if any(p.regressions for p in pairs) else 0
    out = (args.out or OUT / f"merged-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    for path in args.runs:
        _results(path)
    try:
        run = merge([p.resolve() for p in args.runs], out)
    except MergeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    render_run(out, run)
    print((out / "matrix.txt").read_text(), end="")
    print(f"merged run: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
