"""Reports of a run, all from its typed results (reports.record): results.json, summary.txt (what
the terminal shows), matrix.txt, Markdown, the linux-mm email text, a self-contained HTML page,
JUnit XML and KTAP per kernel, and KCIDB v5 JSON."""

from __future__ import annotations

import json
from pathlib import Path

from reports import junit, ktap, matrix
from reports.email import render_email
from reports.html import render_html
from reports.kcidb import render_kcidb
from reports.record import Results
from reports.results import write_results

OUT = Path(__file__).resolve().parent / "out"


def render_run(run_dir: Path, results: Results) -> None:
    """Write results.json (never over a fuller one) and every format; point reports/out/latest at a
    run directory of reports/out, and touch no link anywhere else."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(run_dir, results)
    (run_dir / "summary.txt").write_text(matrix.render_summary(results))
    (run_dir / "matrix.txt").write_text(matrix.render_text(results))
    (run_dir / "matrix.md").write_text(matrix.render_markdown(results))
    (run_dir / "email.txt").write_text(render_email(results))
    (run_dir / "report.html").write_text(render_html(results))
    (run_dir / "kcidb.json").write_text(json.dumps(render_kcidb(results), indent=1, sort_keys=True))
    junit.write_all(results, run_dir)
    ktap.write_all(results, run_dir)
    if run_dir.resolve().parent == OUT:
        latest, tmp = OUT / "latest", OUT / ".latest.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(run_dir.name)
        tmp.replace(latest)
