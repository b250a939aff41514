"""Reports of a run: results.json, the matrix (text, Markdown) and JUnit XML, all from one results log."""

from __future__ import annotations

from pathlib import Path

from reports import junit, matrix
from reports.results import write_results


def render_run(run_dir: Path, run: dict[str, object]) -> dict[str, object]:
    """Fold results.jsonl into results.json and write every format; point reports/out/latest here."""
    document = write_results(run_dir, run)
    (run_dir / "matrix.txt").write_text(matrix.render_text(document))
    (run_dir / "matrix.md").write_text(matrix.render_markdown(document))
    junit.write_all(document, run_dir)
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / ".latest.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)
    return document
