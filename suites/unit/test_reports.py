"""Matrix and JUnit rendering from a results document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from reports import junit, matrix, render_run
from reports.results import ResultsLog, read_log

KERNEL_INFO = {
    "old-1": {"name": "old-1", "label": "old", "spec": "old", "version": "6.1.0", "release": "6.1.0-1", "build_id": "1"},
    "new-2": {"name": "new-2", "label": "new", "spec": "new", "version": "6.12.0", "release": "6.12.0-1", "build_id": "2"},
}


def case(kernel: str, params: str, rule: str, verdict: str, message: str | None = None) -> dict[str, object]:
    return {
        "kernel_info": KERNEL_INFO[kernel],
        "nodeid": f"t[{kernel}-{params}]",
        "test": "eligibility",
        "case_id": f"{kernel}-{params}",
        "params_id": params,
        "kernel": kernel,
        "rule": rule,
        "group": "eligibility" if rule.startswith("A") else "process_madvise",
        "verdict": verdict,
        "message": message,
        "duration_s": 0.5,
        "expected": {"result": "ok"},
        "observed": {"result": "EPERM"},
    }


DOCUMENT = {
    "run": {"run_id": "r1", "spec": "upstream", "rule_book": "1"},
    "kernels": list(KERNEL_INFO.values()),
    "cases": [
        case("old-1", "self-nonice", "D2.self", "PASS"),
        case("new-2", "self-nonice", "A0", "FAIL", "A0: expected result=ok; observed result=EPERM"),
        case("old-1", "madvise-nice", "A0", "PASS"),
        case("new-2", "madvise-nice", "A0", "SKIP", "reason"),
    ],
}


def test_text_matrix_groups_rows_and_explains_failures() -> None:
    text = matrix.render_text(DOCUMENT)
    flat = " ".join(text.split())
    assert "2 cases" not in flat and "4 cases on 2 kernels: 2 PASS, 1 FAIL, 1 SKIP, 0 ERROR" in flat
    row = next(line for line in text.splitlines() if "self-nonice" in line and "PASS" in line)
    assert "(D2.self@[1])" in row and row.split()[-2:] == ["PASS", "FAIL"]
    assert "[1] old: 6.1.0 (6.1.0-1, build 1)" in text
    assert "FAIL (regression) [2] eligibility[new-2-self-nonice]: A0: expected result=ok; observed result=EPERM" in flat


def test_markdown_marks_failures() -> None:
    markdown = matrix.render_markdown(DOCUMENT)
    assert "| upstream | eligibility | A0 | `eligibility[self-nonice (D2.self@old)]` | PASS | **FAIL** |" in markdown


def test_junit_per_kernel() -> None:
    suite = ET.fromstring(junit.render(DOCUMENT, DOCUMENT["kernels"][1]))  # type: ignore[index]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "1")
    assert suite.find("testcase/failure").get("message") == "A0: expected result=ok; observed result=EPERM"  # type: ignore[union-attr]


def test_log_is_append_only_and_last_record_wins(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path)
    for record in DOCUMENT["cases"]:  # type: ignore[union-attr]
        log.append(record)
    log.append({**DOCUMENT["cases"][0], "verdict": "ERROR"})  # type: ignore[index]
    log.close()
    with (tmp_path / "results.jsonl").open("a") as torn:
        torn.write('{"nodeid": "half')
    records = read_log(tmp_path / "results.jsonl")
    assert len(records) == 4 and records[0]["verdict"] == "ERROR"


def test_render_run_writes_every_format(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "r1"
    log = ResultsLog(run_dir)
    for record in DOCUMENT["cases"]:  # type: ignore[union-attr]
        log.append(record)
    log.close()
    document = render_run(run_dir, {**DOCUMENT["run"], "kernel_specs": ["new", "old"]})  # type: ignore[dict-item]
    assert [k["label"] for k in document["kernels"]] == ["new", "old"]  # type: ignore[index, union-attr]
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [
        "email.txt",
        "junit-new.xml",
        "junit-old.xml",
        "kcidb.json",
        "matrix.md",
        "matrix.txt",
        "report.html",
        "results.json",
        "results.jsonl",
    ]
    assert (tmp_path / "out" / "latest").resolve() == run_dir.resolve()


def test_repeats_that_disagree_are_flaky_not_pass() -> None:
    repeated = [case("old-1", "madvise-nice", "A0", v) for v in ("PASS", "FAIL", "PASS")]
    repeated += [case("new-2", "madvise-nice", "A0", "PASS") for _ in range(3)]
    document = {**DOCUMENT, "run": {**DOCUMENT["run"], "repeat": 3}, "cases": repeated}  # type: ignore[dict-item]
    assert matrix.totals(document) == {"FLAKY": 1, "PASS": 1}
    flat = " ".join(matrix.render_text(document).split())
    assert "2 cases x3 repeats on 2 kernels: 1 PASS, 0 FAIL, 0 SKIP, 0 ERROR, 1 FLAKY" in flat
    assert "FLAKY (flaky) [1] eligibility[old-1-madvise-nice]: repeats disagree: PASS, FAIL, PASS" in flat
