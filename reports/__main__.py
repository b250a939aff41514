"""python -m reports: render a run's reports, diff two runs (or the kernels of one), merge runs.

python -m reports render RUN          every format again, from RUN/results.jsonl (with RUN/run.json,
                                      for a run killed before it wrote results.json), or from
                                      RUN/results.json when the log is gone (what a CI job keeps);
                                      RUN is a run directory or a results.json
python -m reports diff BASE NEW       regressions, errors, fixes, new and removed cases, kernels
                                      paired by label
python -m reports diff RUN            along RUN's kernel order: last kernel passing, first failing
                                      (informational: exits 0)
python -m reports merge RUN... --out DIR   one matrix from several runs of the same rule book

The first line of stdout is a one-line summary. Exit status (reports.exits.Exit): 0 clean, 1 a kernel
regression, 3 infrastructure errors only, 4 bad input (one line on stderr naming the fix).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NoReturn

from reports import OUT, render_run
from reports.diff import diff, render_across, render_diff
from reports.exits import Exit
from reports.matrix import render_summary
from reports.merge import MergeError, merge
from reports.record import Results, ResultsError, load
from reports.results import HEADER, fold_log
from reports.summary import exit_status


class Parser(argparse.ArgumentParser):
    """argparse with the project's usage exit status (4) instead of argparse's 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(Exit.USAGE)


def rendered(path: Path) -> tuple[Path, Results]:
    """The run directory of PATH and its results: folded from results.jsonl when the run left its
    log, else read from results.json (a CI job often keeps only that file)."""
    run_dir = path if path.is_dir() else path.parent
    if path.is_dir() and (run_dir / "results.jsonl").exists():
        header = run_dir / HEADER if not (run_dir / "results.json").exists() else None
        run = load_header(header) if header else load(path).run  # a killed run has no results.json
        return run_dir, fold_log(run_dir, run)
    return run_dir, load(path)


def load_header(path: Path) -> dict[str, object]:
    if not path.exists():
        raise ResultsError(f"{path.parent}: results.jsonl but no results.json or {HEADER}; rerun it with --resume {path.parent}")
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ResultsError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(run, dict):
        raise ResultsError(f"{path}: not a run header")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m reports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    render = sub.add_parser("render", help="rebuild every report of a run from its results")
    render.add_argument("run", type=Path, help="a run directory (reports/out/RUN) or its results.json")
    compare = sub.add_parser("diff", help="BASE NEW: class changes per kernel pair; RUN: changes along its kernels")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="one or two run directories or results.json files")
    combine = sub.add_parser("merge", help="combine runs made with the same rule book")
    combine.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories or results.json files")
    combine.add_argument("--out", type=Path, default=None, help="merged run directory (default: reports/out/merged-TIME)")
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            run_dir, results = rendered(args.run)
            render_run(run_dir.resolve(), results)
            print(render_summary(results), end="")
            print(f"reports: {run_dir}")
            return exit_status(results)
        if args.command == "diff":
            if len(args.runs) > 2:
                parser.error("diff takes BASE NEW, or one RUN")
            if len(args.runs) == 1:
                print(render_across(load(args.runs[0])), end="")
                return Exit.CLEAN
            base, new = (load(p) for p in args.runs)
            result = diff(base, new)
            print(render_diff(result, new), end="")
            return result.exit_status
        out = (args.out or OUT / f"merged-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
        merged = merge([p.resolve() for p in args.runs], out)
        results = fold_log(out, merged)
        render_run(out, results)
        print(render_summary(results), end="")
        print(f"merged run: {out}")
        return exit_status(results)
    except (ResultsError, MergeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return Exit.USAGE


if __name__ == "__main__":
    sys.exit(main())
