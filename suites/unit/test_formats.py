"""Every report format, rendered from a real results file (suites/unit/data/results-sample.json: a
slice of a real four-kernel run, its FAILs included), checked against golden files.

To accept a deliberate change of a text format: COLLAPSE_UPDATE_GOLDEN=1 pytest suites/unit
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kcidb_io import schema

from reports import render_run
from reports.diff import across, diff
from reports.email import render_email
from reports.kcidb import render_kcidb
from reports.matrix import failures, render_markdown, render_text
from reports.merge import MergeError, merge
from vm.bisect import BAD, GOOD, SKIP, verdict_of

DATA = Path(__file__).with_name("data")
SAMPLE = DATA / "results-sample.json"
REPO = Path(__file__).resolve().parents[2]


def sample() -> dict[str, object]:
    return json.loads(SAMPLE.read_text())


@pytest.mark.parametrize(
    "name,render",
    [("matrix.txt", render_text), ("email.txt", render_email), ("matrix.md", render_markdown)],
)
def test_text_formats_match_golden_files(name: str, render, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = render(sample())
    golden = DATA / f"golden-{name}"
    if os.environ.get("COLLAPSE_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), f"{name} changed; if on purpose: COLLAPSE_UPDATE_GOLDEN=1 pytest {__file__}"


def test_terminal_matrix_fits_100_columns_and_has_a_legend() -> None:
    lines = render_text(sample()).splitlines()
    assert max(map(len, lines)) <= 100
    assert any(line.startswith("Legend: PASS") for line in lines)


def test_email_fits_72_columns_opens_with_summary_and_lists_regressions_first() -> None:
    text = render_email(sample())
    lines = text.splitlines()
    assert max(map(len, lines)) <= 72
    assert lines[0].startswith("MADV_COLLAPSE conformance: ")
    sections = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert sections[0] == "Kernels:"
    regression_at = next((i for i, s in enumerate(sections) if s.startswith("Regressions")), None)
    doc_at = next(i for i, s in enumerate(sections) if s.startswith("Documentation discrepancies"))
    assert regression_at is None or regression_at < doc_at
    assert "expected: " in text and "observed: " in text


def test_failures_are_classed_documentation_apart_from_regressions() -> None:
    classes = {str(c["class"]) for c in failures(sample())}
    assert "documentation" in classes
    documented = [c for c in failures(sample()) if c["class"] == "documentation"]
    assert all(c["group"] == "documentation" for c in documented)


def test_kcidb_validates_against_the_published_v5_schema() -> None:
    data = render_kcidb(sample())
    schema.V5_3.validate(data)
    statuses = {t["status"] for t in data["tests"]}  # type: ignore[union-attr, index]
    assert statuses <= {"PASS", "FAIL", "ERROR", "SKIP", "MISS"} and "FAIL" in statuses
    assert all(t["path"].startswith("madv_collapse.") for t in data["tests"])  # type: ignore[union-attr, index]


def _with_verdict(document: dict[str, object], case_id: str, verdict: str) -> dict[str, object]:
    changed = copy.deepcopy(document)
    for case in changed["cases"]:  # type: ignore[union-attr]
        if case["case_id"] == case_id:
            case["verdict"] = verdict
    return changed


def _first(document: dict[str, object], verdict: str) -> str:
    return next(str(c["case_id"]) for c in document["cases"] if c["verdict"] == verdict)  # type: ignore[union-attr, index]


def test_diff_reports_regressions_and_fixes_and_exits_1(tmp_path: Path) -> None:
    base = sample()
    passing, failing = _first(base, "PASS"), _first(base, "FAIL")
    new = _with_verdict(_with_verdict(base, passing, "FAIL"), failing, "PASS")
    pairs = diff(base, new)
    assert sum(len(p.regressions) for p in pairs) == 1 and sum(len(p.fixes) for p in pairs) == 1
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "new.json").write_text(json.dumps(new))
    proc = subprocess.run(
        [sys.executable, "-m", "reports", "diff", str(tmp_path / "base.json"), str(tmp_path / "new.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "regression: " in proc.stdout
    same = subprocess.run(
        [sys.executable, "-m", "reports", "diff", str(tmp_path / "base.json"), str(tmp_path / "base.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0


def test_diff_across_kernels_names_last_pass_and_first_failure() -> None:
    changes = {key: (last, first) for key, last, first, _ in across(sample())}
    assert changes, "the sample has cases whose verdict changes across kernels"
    assert any(last and first for last, first in changes.values())


def test_merge_combines_runs_and_refuses_mixed_rule_books(tmp_path: Path) -> None:
    document = sample()
    kernels = [str(k["name"]) for k in document["kernels"]]  # type: ignore[union-attr, index]
    halves = []
    for index, names in enumerate((kernels[:2], kernels[2:])):
        part = copy.deepcopy(document)
        part["kernels"] = [k for k in part["kernels"] if k["name"] in names]  # type: ignore[union-attr, index]
        part["cases"] = [c for c in part["cases"] if c["kernel"] in names]  # type: ignore[union-attr, index]
        path = tmp_path / f"part{index}.json"
        path.write_text(json.dumps(part))
        halves.append(path)
    out = tmp_path / "merged"
    render_run(out, merge(halves, out))
    merged = json.loads((out / "results.json").read_text())
    assert len(merged["cases"]) == len(document["cases"]) and len(merged["kernels"]) == len(kernels)  # type: ignore[arg-type]
    other = json.loads(halves[1].read_text())
    other["run"]["rule_book"] = "1999.1.0"
    halves[1].write_text(json.dumps(other))
    with pytest.raises(MergeError, match="different rule-book versions"):
        merge(halves, tmp_path / "refused")


def test_bisect_answers_good_bad_and_skip() -> None:
    def results(*verdicts: str) -> dict[str, object]:
        return {"cases": [{"verdict": v} for v in verdicts]}

    assert verdict_of(results("PASS", "SKIP"))[0] == GOOD
    assert verdict_of(results("PASS", "FAIL", "ERROR"))[0] == BAD
    assert verdict_of(results("PASS", "ERROR"))[0] == SKIP
    assert verdict_of(results("SKIP"))[0] == SKIP
    assert verdict_of(results())[0] == SKIP


def test_bisect_skips_a_tree_that_does_not_build(tmp_path: Path) -> None:
    """A commit whose tree cannot be configured is skipped (125), never 255."""
    (tmp_path / "Makefile").write_text("all:\n\tfalse\n")
    proc = subprocess.run([sys.executable, "-m", "vm.bisect", "--tree", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == SKIP, proc.stderr
    assert "skip" in proc.stderr.splitlines()[-1]
