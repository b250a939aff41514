"""Every report format, rendered from a real results file (suites/unit/data/results-sample.json: a
slice of a real four-kernel run, its FAILs included), checked against golden files.

To accept a deliberate change of a text format: COLLAPSE_UPDATE_GOLDEN=1 pytest suites/unit
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from kcidb_io import schema

from reports import render_run
from reports.diff import across, diff
from reports.email import render_email
from reports.jsonvalues import mapping
from reports.kcidb import render_kcidb
from reports.matrix import render_markdown, render_text
from reports.merge import MergeError, merge
from reports.record import CaseClass, Results, ResultsDocument
from reports.results import fold_log
from reports.summary import failures

DATA = Path(__file__).with_name("data")
SAMPLE = DATA / "results-sample.json"
REPO = Path(__file__).resolve().parents[2]


def sample_data() -> ResultsDocument:
    return cast(ResultsDocument, json.loads(SAMPLE.read_text()))  # a results.json this suite wrote


def sample() -> Results:
    return Results.from_json(sample_data())


@pytest.mark.parametrize(
    "name,render",
    [("matrix.txt", render_text), ("email.txt", render_email), ("matrix.md", render_markdown)],
)
def test_text_formats_match_golden_files(name: str, render: Callable[[Results], str], tmp_path: Path) -> None:
    text = render(sample())
    golden = DATA / f"golden-{name}"
    if os.environ.get("COLLAPSE_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), f"{name} changed; if on purpose: COLLAPSE_UPDATE_GOLDEN=1 pytest {__file__}"


def test_terminal_matrix_fits_100_columns_and_has_a_legend() -> None:
    lines = render_text(sample()).splitlines()
    assert max(map(len, lines)) <= 100
    assert any(line.startswith("Overview cells: ") for line in lines) and any(line.startswith("Every-case cells") for line in lines)


def test_email_fits_72_columns_opens_with_summary_and_lists_regressions_first() -> None:
    text = render_email(sample())
    lines = text.splitlines()
    # Only a case's -k word, which must not be cut, may pass 72 columns (as a URL would).
    assert all(len(line) <= 72 or re.fullmatch(r" {6}\w+\[[\w.-]+\]( or)?", line) for line in lines)
    assert lines[0].startswith("Subject: MADV_COLLAPSE conformance REGRESSION: ")
    sections = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert sections[0] == "Kernels:"
    regression_at = next((i for i, s in enumerate(sections) if s.startswith("Regressions")), None)
    doc_at = next(i for i, s in enumerate(sections) if s.startswith("Documentation discrepancies"))
    assert regression_at is None or regression_at < doc_at
    assert "expected: " in text and "observed: " in text


def test_failures_are_classed_documentation_apart_from_regressions() -> None:
    classes = {c.case_class for c in failures(sample())}
    assert CaseClass.DOCUMENTATION in classes
    documented = [c for c in failures(sample()) if c.case_class is CaseClass.DOCUMENTATION]
    assert all(c.group == "documentation" for c in documented)


def test_kcidb_validates_against_the_published_v5_schema() -> None:
    data = render_kcidb(sample())
    schema.V5_3.validate(data)
    statuses = {t["status"] for t in data["tests"]}
    assert statuses <= {"PASS", "FAIL", "ERROR", "SKIP", "DONE"} and "FAIL" in statuses
    # A documentation discrepancy is DONE (no verdict on the kernel), never FAIL.
    assert {t["status"] for t in data["tests"] if mapping(t["misc"])["class"] == "documentation"} == {"DONE"}
    assert all(str(t["path"]).startswith("madv_collapse.") for t in data["tests"])


def _with_class(document: ResultsDocument, case_id: str, verdict: str, case_class: str) -> ResultsDocument:
    changed = copy.deepcopy(document)
    for case in changed["cases"]:
        if case["case_id"] == case_id:
            case["verdict"], case["class"] = verdict, case_class
    return changed


def _first(document: ResultsDocument, verdict: str) -> str:
    return next(str(c["case_id"]) for c in document["cases"] if c["verdict"] == verdict and c["spec"] == "upstream")


def test_diff_reports_regressions_and_fixes_and_exits_1(tmp_path: Path) -> None:
    base = sample_data()
    passing, failing = _first(base, "PASS"), _first(base, "FAIL")
    new = _with_class(_with_class(base, passing, "FAIL", "regression"), failing, "PASS", "pass")
    result = diff(Results.from_json(base), Results.from_json(new))
    assert sum(len(p.regressions) for p in result.pairs) == 1 and sum(len(p.fixes) for p in result.pairs) == 1
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
    changes = {c.key: (c.last_pass, c.first_failure) for c in across(sample())}
    assert changes, "the sample has cases whose class changes across kernels"
    assert any(last and first for last, first in changes.values())


def test_merge_combines_runs_and_refuses_mixed_rule_books(tmp_path: Path) -> None:
    document = sample_data()
    kernels = [str(k["name"]) for k in document["kernels"]]
    halves = []
    for index, names in enumerate((kernels[:2], kernels[2:])):
        part = copy.deepcopy(document)
        part["kernels"] = [k for k in part["kernels"] if k["name"] in names]
        part["cases"] = [c for c in part["cases"] if c["kernel"] in names]
        path = tmp_path / f"part{index}.json"
        path.write_text(json.dumps(part))
        halves.append(path)
    out = tmp_path / "merged"
    render_run(out, fold_log(out, merge(halves, out)))
    merged = json.loads((out / "results.json").read_text())
    assert len(merged["cases"]) == len(document["cases"]) and len(merged["kernels"]) == len(kernels)
    other = json.loads(halves[1].read_text())
    other["run"]["rule_book"] = "1999.1.0"
    halves[1].write_text(json.dumps(other))
    with pytest.raises(MergeError, match="different rule-book versions"):
        merge(halves, tmp_path / "refused")


def test_kcidb_checkout_of_a_tree_kernel_carries_its_git_provenance() -> None:
    data = sample_data()
    data["kernels"][0]["git"] = {
        "commit": "a" * 40,
        "describe": "v6.12-3-gaaaaaaaaaaaa",
        "dirty": True,
        "remote": "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git",
        "patchset_hash": "b" * 64,
    }
    document = render_kcidb(Results.from_json(data))
    schema.V5_3.validate(document)
    checkout = document["checkouts"][0]
    assert (checkout["git_commit_hash"], checkout["patchset_hash"], checkout["git_commit_name"]) == (
        "a" * 40,
        "b" * 64,
        "v6.12-3-gaaaaaaaaaaaa",
    )
    assert str(checkout["git_repository_url"]).startswith("https://")
