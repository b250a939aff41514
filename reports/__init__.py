"""Reports of a run, all from one results log: results.json, the terminal matrix, Markdown, the
linux-mm email text, a self-contained HTML page, JUnit XML per kernel and KCIDB v5 JSON."""

from __future__ import annotations

import json
from pathlib import Path

from reports import junit, matrix
from reports.email import render_email
from reports.html import render_html
from reports.kcidb import render_kcidb
from reports.results import write_results


def render_run(run_dir: Path, run: dict[str, object]) -> dict[str, object]:
    """Fold results.jsonl into results.json and write every format; point reports/out/latest here."""
    document = write_results(run_dir, run)
    (run_dir / "matrix.txt").write_text(matrix.render_text(document))
    (run_dir / "matrix.md").write_text(matrix.render_markdown(document))
    (run_dir / "email.txt").write_text(render_email(document))
    (run_dir / "report.html").write_text(render_html(document))
    (run_dir / "kcidb.json").write_text(json.dumps(render_kcidb(document), indent=1, sort_keys=True))
    junit.write_all(document, run_dir)
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / ".latest.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)
    return document
