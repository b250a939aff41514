"""Reports from small typed results: classes, the overview, JUnit, render, diff and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reports import OUT, junit, matrix, render_run
from reports.diff import diff, render_across, render_diff
from reports.email import render_email
from reports.exits import Exit
from reports.jsonvalues import mapping
from reports.record import CaseClass, Results, ResultsDocument, ResultsError, load
from reports.results import ResultsLog, fold_log, read_log
from reports.summary import counts, exit_status, summary_line

REPO = Path(__file__).resolve().parents[2]
KERNEL_INFO: dict[str, dict[str, object]] = {
    "old-1": {"name": "old-1", "label": "old", "origin": "old", "version": "6.1.0", "release": "6.1.0-1", "build_id": "1"},
    "new-2": {"name": "new-2", "label": "new", "origin": "new", "version": "6.12.0", "release": "6.12.0-1", "build_id": "2"},
}
CLASS_OF = {"PASS": "pass", "SKIP": "skip", "ERROR": "infrastructure", "FAIL": "regression"}


def case(kernel: str, params: str, rule: str, verdict: str, message: str | None = None, cls: str | None = None) -> dict[str, object]:
    return {
        "kernel_info": KERNEL_INFO[kernel],
        "nodeid": f"t[{kernel}-{params}]",
        "test": "eligibility",
        "case_id": f"{kernel}-{params}",
        "params_id": params,
        "kernel": kernel,
        "spec": "upstream",
        "repeat": 1,
        "rule": rule,
        "group": "eligibility" if rule.startswith("A") else "process_madvise",
        "verdict": verdict,
        "class": cls or CLASS_OF[verdict],
        "message": message,
        "duration_s": 0.5,
        "expected": {"result": "ok"},
        "observed": {"result": "EPERM"},
    }


DOCUMENT: ResultsDocument = {
    "run": {
        "run_id": "r1",
        "spec": "upstream",
        "rule_book": "1",
        "rules": {"A0": "a rule", "D2.self": "another"},
        "finished": "2026-12-01T00:00:00+0000",
    },
    "kernels": list(KERNEL_INFO.values()),
    "cases": [
        case("old-1", "self-nonice", "D2.self", "PASS"),
        case("new-2", "self-nonice", "A0", "FAIL", "A0: expected result=ok; observed result=EPERM"),
        case("old-1", "madvise-nice", "A0", "PASS"),
        case("new-2", "madvise-nice", "A0", "SKIP", "reason"),
    ],
}


def results(**changes: object) -> Results:
    return Results.from_json({**DOCUMENT, **changes})


def with_cases(*cases: dict[str, object]) -> Results:
    return results(cases=list(cases))


def found(element: ET.Element, path: str) -> ET.Element:
    """The first element at PATH under ELEMENT, which must be there."""
    match = element.find(path)
    assert match is not None, f"no {path}"
    return match


def test_text_matrix_opens_with_summary_and_overview_then_every_case() -> None:
    text = matrix.render_text(results())
    lines = text.splitlines()
    assert lines[0].startswith("MADV_COLLAPSE conformance REGRESSION: 1 regression, 0 infrastructure errors")
    overview = next(i for i, line in enumerate(lines) if line.lstrip().startswith("rule "))
    every = lines.index("Every case:")
    assert overview < every
    a0 = next(line for line in lines[overview:every] if line.lstrip().startswith("A0 "))
    assert a0.split()[1:4] == ["PASS", "1", "FAIL"] and "1/1" in a0  # old: PASS 1; new: FAIL 1/1
    flat = " ".join(text.split())
    assert "FAIL (regression) [2] eligibility[new-2-self-nonice]: A0: expected result=ok; observed result=EPERM" in flat


def test_terminal_summary_is_the_overview_without_every_case() -> None:
    summary = matrix.render_summary(results())
    assert "Every case:" not in summary and "A0" in summary
    assert " ".join(summary_line(results()).split()) in " ".join(summary.split())
    assert summary.splitlines()[0].startswith("MADV_COLLAPSE conformance REGRESSION")


def test_markdown_has_overview_with_skip_reasons_and_marks_regressions() -> None:
    markdown = matrix.render_markdown(results())
    assert markdown.index("## Overview") < markdown.index("## Failing cases") < markdown.index("## Every case")
    assert "| upstream | A0 | PASS 1 | **FAIL 1/2** | a rule |" not in markdown  # skips are not judged
    assert "| upstream | A0 | PASS 1 | **FAIL 1/1** | a rule |" in markdown


def test_an_infrastructure_error_is_never_a_regression() -> None:
    """Issue 13.4: an ERROR (set-up inconclusive, VM did not boot) is listed apart, not as a regression."""
    errored = with_cases(case("old-1", "madvise-nice", "A0", "PASS"), case("new-2", "madvise-nice", "A0", "ERROR", "inconclusive: set-up"))
    email = render_email(errored)
    assert "Regressions" not in email and "Infrastructure errors" in email
    assert "0 regressions" in " ".join(email.split()) and exit_status(errored) is Exit.INFRASTRUCTURE
    suite = ET.fromstring(junit.render(errored, errored.kernels[1]))
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1")


def test_junit_counts_documentation_discrepancies_as_xfail_not_failures() -> None:
    documented = case("new-2", "self-nonice", "DOC.D3", "FAIL", "DOC.D3: expected EPERM", cls="documentation")
    suite = ET.fromstring(junit.render(with_cases(documented), KERNEL_INFO["new-2"]))
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "1")
    assert found(suite, "testcase/skipped").get("type") == "pytest.xfail"


def test_stored_class_is_read_not_worked_out_again() -> None:
    """A FAIL the judge classed as documentation stays documentation, whatever its group says."""
    odd = case("new-2", "self-nonice", "A0", "FAIL", "x", cls="documentation")
    assert with_cases(odd).cases[0].case_class is CaseClass.DOCUMENTATION
    assert exit_status(with_cases(odd)) is Exit.CLEAN


def test_junit_per_kernel() -> None:
    suite = ET.fromstring(junit.render(results(), KERNEL_INFO["new-2"]))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "1")
    assert found(suite, "testcase/failure").get("message") == "A0: expected result=ok; observed result=EPERM"


def test_log_is_append_only_and_last_record_wins(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path, DOCUMENT["run"])
    for record in DOCUMENT["cases"]:
        log.append(record)
    log.append({**DOCUMENT["cases"][0], "verdict": "ERROR"})
    log.close()
    with (tmp_path / "results.jsonl").open("a") as torn:
        torn.write('{"nodeid": "half')
    records = read_log(tmp_path / "results.jsonl")
    assert len(records) == 4 and records[0]["verdict"] == "ERROR"


def test_render_run_writes_every_format_and_no_latest_link_outside_reports_out(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "r1"
    render_run(run_dir, results())
    names = sorted(p.name for p in run_dir.iterdir())
    assert {"email.txt", "junit-new.xml", "junit-old.xml", "kcidb.json", "matrix.md", "matrix.txt", "report.html"} <= set(names)
    assert {"results.json", "summary.txt", "ktap-new.txt", "ktap-old.txt"} <= set(names)
    assert not (tmp_path / "out" / "latest").exists()


def _reports(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "reports", *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env)


def test_render_from_results_json_alone_loses_nothing(tmp_path: Path) -> None:
    """Issue 13.2: a directory holding only results.json (what CI keeps) is rendered from it, and
    results.json is not replaced by an emptier document; a file path works too."""
    (tmp_path / "results.json").write_text(json.dumps(DOCUMENT))
    before = len(json.loads((tmp_path / "results.json").read_text())["cases"])
    for target in (tmp_path, tmp_path / "results.json"):
        proc = _reports("render", target, cwd=tmp_path)
        assert proc.returncode == Exit.REGRESSION, proc.stderr
        assert proc.stdout.splitlines()[0].startswith("MADV_COLLAPSE conformance REGRESSION: 1 regression")
        assert len(json.loads((tmp_path / "results.json").read_text())["cases"]) == before
        assert (tmp_path / "matrix.txt").exists() and not (tmp_path.parent / "latest").exists()


def test_results_json_is_never_replaced_by_an_emptier_document(tmp_path: Path) -> None:
    render_run(tmp_path, results())
    with pytest.raises(ResultsError, match="not replaced"):
        render_run(tmp_path, with_cases())
    assert len(load(tmp_path).cases) == 4


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "no results.json"),
        ("{not json", "not readable as JSON"),
        ('{"cases": 3}', "not a results document"),
        ('{"run": {}, "kernels": [], "cases": [{"x": 1}]}', "malformed"),
        ('{"run": {}, "kernels": [{}], "cases": []}', "a kernel lacks"),
    ],
)
def test_bad_input_is_one_line_and_exit_4(tmp_path: Path, content: str | None, expected: str) -> None:
    """Issue 13.5: a missing, non-JSON or wrong-shaped file gives one line and the usage status, no traceback."""
    if content is not None:
        (tmp_path / "results.json").write_text(content)
    commands: list[list[str | Path]] = [["render", tmp_path], ["diff", tmp_path, tmp_path], ["diff", tmp_path]]
    for command in commands:
        proc = _reports(*command)
        assert proc.returncode == Exit.USAGE, (command, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_4() -> None:
    proc = _reports("diff")
    assert proc.returncode == Exit.USAGE and "Traceback" not in proc.stderr


def test_diff_pairs_kernels_by_label_and_lists_the_unpaired() -> None:
    """Issue 13.3: a 2-kernel base against a 1-kernel new run compares the matching label only."""
    base = results()
    new = Results.from_json(
        {**DOCUMENT, "kernels": [KERNEL_INFO["new-2"]], "cases": [c for c in DOCUMENT["cases"] if c["kernel"] == "new-2"]}
    )
    result = diff(base, new)
    assert [(p.base["label"], p.new["label"]) for p in result.pairs] == [("new", "new")]
    assert [k["label"] for k in result.unpaired_base] == ["old"] and not result.unpaired_new
    text = render_diff(result, new)
    assert "unpaired (only in base): old" in text and result.exit_status is Exit.CLEAN


def test_diff_says_when_rule_books_differ() -> None:
    other = results(run={**DOCUMENT["run"], "rule_book": "2"})
    assert "different rule books" in render_diff(diff(results(), other), other)


def test_across_never_prints_none() -> None:
    failing_first = with_cases(case("old-1", "x", "A0", "FAIL", "m"), case("new-2", "x", "A0", "PASS"))
    text = render_across(failing_first)
    assert "None" not in text and "no earlier kernel passed" in text


def test_repeats_that_disagree_are_flaky_not_pass() -> None:
    repeated = [case("old-1", "madvise-nice", "A0", v) for v in ("PASS", "FAIL", "PASS")]
    repeated += [case("new-2", "madvise-nice", "A0", "PASS") for _ in range(3)]
    for index, record in enumerate(repeated):
        record["repeat"] = index % 3 + 1
    flaky = results(run={**DOCUMENT["run"], "repeat": 3}, cases=repeated)
    assert counts(flaky) == {CaseClass.FLAKY: 1, CaseClass.PASS: 1}
    flat = " ".join(matrix.render_text(flaky).split())
    # One repeat broke the rule: that is a regression seen (exit 1), and the case is flaky.
    assert flat.startswith("MADV_COLLAPSE conformance REGRESSION: 1 regression, 0 infrastructure errors, 1 flaky case;")
    assert "x3 on 2 kernels" in flat and exit_status(flaky) is Exit.REGRESSION
    assert "FLAKY (flaky) [1] eligibility[old-1-madvise-nice]: A0: repeats disagree: pass, regression, pass" in flat


def test_latest_link_only_under_reports_out() -> None:
    assert OUT == REPO / "reports" / "out"


def test_a_case_retried_after_eagain_is_marked_in_every_human_report() -> None:
    """Issue 12.9: the retry is kept, but a case that needed more than one call is shown."""
    retried = case("new-2", "madvise-nice", "A0", "PASS")
    retried["raw"] = {"call": {"errno": None, "attempts": 2}}
    once = results(cases=[case("old-1", "madvise-nice", "A0", "PASS"), retried])
    text = matrix.render_text(once)
    assert "PASS 1*" in text and "[2] eligibility[new-2-madvise-nice]: 2 calls (EAGAIN retried), pass" in text
    assert "2 calls (EAGAIN retried)" in render_email(once) and "2 calls (EAGAIN retried)" in matrix.render_markdown(once)
    suite = ET.fromstring(junit.render(once, KERNEL_INFO["new-2"]))
    assert found(suite, "testcase/properties/property[@name='attempts']").get("value") == "2"


def test_a_killed_run_renders_from_its_log_and_header(tmp_path: Path) -> None:
    """SIGKILL or OOM leaves results.jsonl and run.json but no results.json: render still works."""
    log = ResultsLog(tmp_path, {**DOCUMENT["run"], "kernel_origins": ["old", "new"]})
    for record in DOCUMENT["cases"]:
        log.append(record)
    log.close()
    assert not (tmp_path / "results.json").exists()
    proc = _reports("render", tmp_path)
    assert proc.returncode == Exit.REGRESSION, proc.stderr
    assert len(load(tmp_path).cases) == 4


def test_a_document_written_before_the_origin_rename_still_loads(tmp_path: Path) -> None:
    """Issue 15: before 2026.12 a kernel's --kernel value was its "spec" (in results.json's kernels
    and each case's kernel_info) and the run header listed them as "kernel_specs". Such a results.json,
    and such a results.jsonl with its run.json, load with the same origins under the current keys; a
    case's own "spec" (its rule spec) is untouched."""

    def old(kernel: dict[str, object]) -> dict[str, object]:
        return {("spec" if key == "origin" else key): value for key, value in kernel.items()}

    old_run = {**DOCUMENT["run"], "kernel_specs": ["new", "old"]}
    old_cases = [{**c, "kernel_info": old(mapping(c["kernel_info"]))} for c in DOCUMENT["cases"]]
    (tmp_path / "results.json").write_text(
        json.dumps({"run": old_run, "kernels": [old(k) for k in KERNEL_INFO.values()], "cases": old_cases})
    )
    loaded = load(tmp_path)
    assert loaded == results(run={**DOCUMENT["run"], "kernel_origins": ["new", "old"]})
    assert [k["origin"] for k in loaded.kernels] == ["old", "new"] and not any("spec" in k for k in loaded.kernels)
    assert {c.kernel_info["origin"] for c in loaded.cases} == {"old", "new"} and {c.spec for c in loaded.cases} == {"upstream"}
    assert loaded.run["kernel_origins"] == ["new", "old"] and "kernel_specs" not in loaded.run
    killed = tmp_path / "killed"
    log = ResultsLog(killed, old_run)
    for record in old_cases:
        log.append(record)
    log.close()
    folded = fold_log(killed, json.loads((killed / "run.json").read_text()))
    assert [k["origin"] for k in folded.kernels] == ["new", "old"]  # in the order of the old header's kernel_specs
    assert "--kernel new" in render_email(folded)  # the reproduce command names the origin


def test_a_log_line_that_is_not_a_record_is_one_line_exit_4(tmp_path: Path) -> None:
    render_run(tmp_path, results())
    (tmp_path / "results.jsonl").write_text('{"nodeid": "x"}\n')
    proc = _reports("render", tmp_path)
    assert proc.returncode == Exit.USAGE and "not a case record" in proc.stderr and "Traceback" not in proc.stderr


def test_merge_never_overwrites_a_run(tmp_path: Path) -> None:
    """merge used to write OUT/results.jsonl before anything could refuse."""
    render_run(tmp_path / "a", results())
    render_run(tmp_path / "out", results())
    before = (tmp_path / "out" / "results.json").read_text()
    proc = _reports("merge", tmp_path / "a", "--out", tmp_path / "out")
    assert proc.returncode == Exit.USAGE and "already holds a run's results" in proc.stderr
    assert (tmp_path / "out" / "results.json").read_text() == before and not (tmp_path / "out" / "results.jsonl").exists()


def test_a_regression_after_a_base_error_is_not_blamed_on_the_new_run() -> None:
    """Nothing is known of a case that ERRORed on the base: its FAIL on the new run is a change,
    not a regression (make series would otherwise blame a patch for it)."""
    base = with_cases(case("new-2", "x", "A0", "ERROR", "boot"))
    new = with_cases(case("new-2", "x", "A0", "FAIL", "A0: ..."))
    pair = next(p for p in diff(base, new).pairs if p.new["label"] == "new")
    assert not pair.regressions and pair.changed == [(("upstream", "eligibility", "x", 1), CaseClass.INFRASTRUCTURE, CaseClass.REGRESSION)]
