"""python -m reports: render a run's reports, diff two runs (or the kernels of one), merge runs.

python -m reports render RUN          every format again, from RUN/results.jsonl (with RUN/run.json,
                                      for a run killed before it wrote results.json), or from
                                      RUN/results.json when the log is gone (what a CI job keeps);
                                      RUN is a run directory or its results.json: both spellings
                                      render the same. When results.json and results.jsonl disagree
                                      on a case (a hand-edited results.json), one line on stderr
                                      says how; results.json is rendered as it is, never
                                      overwritten, and the log's version is written beside it as
                                      results.from-log.json (compare them with diff)
python -m reports diff BASE NEW       regressions, errors, fixes, new and removed cases, kernels
                                      paired by label (one kernel each side: paired when of one
                                      version); --pair-any also pairs kernels of different versions
                                      and leftover kernels in order, and the header says so
python -m reports diff RUN            along RUN's kernel order: last kernel passing, first failing
                                      (informational: exits 0)
python -m reports merge RUN... --out DIR   one matrix from several runs of the same rule book
python -m reports kcidb-submit RUN [--dry-run [--json]]   send RUN's KCIDB report to KernelCI
                                      (env KCIDB_ORIGIN, KCIDB_TOKEN, KCIDB_REST; its --help says
                                      more); exits 0 sent or valid, 3 endpoint unreachable, 4 bad input

The first line of stdout is a one-line summary. Exit status (reports.exits.Exit): 0 clean, 1 a kernel
regression, 3 infrastructure errors only, 4 bad input (one line on stderr naming the fix), 6 the run
did not finish (a kernel or cases planned but not run, a torn record, no finished mark; in a diff:
either side), 7 a diff with no kernel pair to compare, 141 stdout closed early (`| head -1`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from reports import OUT, kcidb_submit, render_run
from reports.diff import diff, nothing_compared, render_across, render_diff
from reports.exits import Exit, Parser, run_command
from reports.matrix import render_summary
from reports.merge import MergeError, merge
from reports.record import CaseRecord, Results, ResultsError, load
from reports.results import HEADER, fold_log
from reports.summary import exit_status

FROM_LOG = "results.from-log.json"  # the log's version of a run whose results.json disagrees with it


def rendered(path: Path, keep_log_copy: bool = True) -> tuple[Path, Results]:
    """The run directory of PATH and its results, the same for RUN and RUN/results.json: folded from
    results.jsonl when the run left its log (with results.json's header, or run.json for a killed
    run), else read from results.json (a CI job often keeps only that file). render and diff read a
    run alike; only render (KEEP_LOG_COPY) writes the log's version beside a results.json it disagrees with."""
    run_dir = path if path.is_dir() else path.parent
    log, document = run_dir / "results.jsonl", run_dir / "results.json"
    if (path.is_file() and path.name != document.name) or not log.exists():
        return run_dir, load(path)
    if not document.exists():
        return run_dir, fold_log(run_dir, load_header(run_dir / HEADER))  # a killed run has no results.json
    stored = load(document)
    folded = fold_log(run_dir, stored.run)
    difference = disagreement(stored, folded)
    if difference is None:
        return run_dir, folded
    if keep_log_copy:
        (run_dir / FROM_LOG).write_text(json.dumps(folded.to_json(), indent=1, sort_keys=True))
    where = f"the log's version is {run_dir / FROM_LOG}" if keep_log_copy else "render writes the log's version beside it"
    print(
        f"warning: {document} and {log} disagree ({difference}); read {document.name} as it is (not overwritten), {where}", file=sys.stderr
    )
    return run_dir, stored


def disagreement(stored: Results, folded: Results) -> str | None:
    """How results.json differs from the log's fold, or None when every case it holds is the log's
    own (the log may hold more: a run resumed after results.json was written)."""
    logged = {(c.nodeid, c.kernel): c for c in folded.cases}
    changed = [c for c in stored.cases if (c.nodeid, c.kernel) in logged and logged[(c.nodeid, c.kernel)] != c]
    lost = [c for c in stored.cases if (c.nodeid, c.kernel) not in logged]
    if not changed and not lost:
        return None
    parts = []
    if changed:
        first = changed[0]
        parts.append(
            f"{len(changed)} cases differ, first {first.nodeid}: {_verdict(first)} in results.json, "
            f"{_verdict(logged[(first.nodeid, first.kernel)])} in results.jsonl"
        )
    if lost:
        parts.append(f"{len(lost)} cases only in results.json, first {lost[0].nodeid}")
    return "; ".join(parts)


def _verdict(case: CaseRecord) -> str:
    return f"{case.verdict}/{case.case_class}"


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
    compare.add_argument(
        "--pair-any", action="store_true", help="also pair kernels of different versions, and kernels left unpaired in order"
    )
    combine = sub.add_parser("merge", help="combine runs made with the same rule book")
    combine.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories or results.json files")
    combine.add_argument("--out", type=Path, default=None, help="merged run directory (default: reports/out/merged-TIME)")
    kcidb_submit.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "kcidb-submit":
            return kcidb_submit.run(rendered(args.run, keep_log_copy=False)[1], args.dry_run, args.json)
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
                _, results = rendered(args.runs[0], keep_log_copy=False)
                if len(results.kernels) < 2:
                    print(f"error: nothing compared: {args.runs[0]} holds one kernel; diff RUN follows a run's kernels", file=sys.stderr)
                    return Exit.NOTHING_COMPARED
                print(render_across(results), end="")
                return Exit.INCOMPLETE if results.completeness.incomplete else Exit.CLEAN  # informational otherwise
            base, new = (rendered(p, keep_log_copy=False)[1] for p in args.runs)
            result = diff(base, new, pair_any=args.pair_any)
            if not result.compared:
                print(f"error: {nothing_compared(result)}", file=sys.stderr)
                return Exit.NOTHING_COMPARED
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
    run_command(main)
