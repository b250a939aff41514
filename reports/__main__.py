"""python -m reports render RUN_DIR: rebuild every report of a run from its results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports import render_run
from reports.results import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="rebuild results.json, matrix.txt, matrix.md and JUnit files of a run")
    render.add_argument("run_dir", type=Path, help="a run directory under reports/out/")
    args = parser.parse_args(argv)
    if not (args.run_dir / "results.json").exists():
        print(f"error: {args.run_dir} has no results.json; pass a run directory such as reports/out/latest", file=sys.stderr)
        return 2
    previous = load(args.run_dir)
    document = render_run(args.run_dir.resolve(), previous["run"])
    print((args.run_dir / "matrix.txt").read_text(), end="")
    return 1 if any(c["verdict"] in ("FAIL", "ERROR") for c in document["cases"]) else 0


if __name__ == "__main__":
    sys.exit(main())
