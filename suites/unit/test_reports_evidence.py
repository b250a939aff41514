"""Never CLEAN without evidence: a run that did not finish is INCOMPLETE in every report, a diff that
compares nothing says so, two kernels of one label never share a file, render reads one run whichever
way it is named, a closed pipe is no traceback, and the case ids an email lists work with pytest -k."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import IO

import pytest
from _pytest.mark import KeywordMatcher
from _pytest.mark.expression import Expression
from kcidb_io import schema

from reports import junit, ktap, render_run
from reports.diff import diff, render_diff
from reports.email import render_email
from reports.exits import Exit
from reports.html import page_data
from reports.jsonvalues import mapping, mappings
from reports.kcidb import render_kcidb
from reports.matrix import render_markdown, render_summary, render_text
from reports.record import Completeness, Results, ResultsError, display_names, load
from reports.recorder import Recorder, kernel_of_nodeid, tool_commit
from reports.results import ResultsLog, fold_log
from reports.summary import exit_status, summary_line

REPO = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).with_name("data") / "results-sample.json"
KERNELS: dict[str, dict[str, object]] = {
    "bookworm-26f2e57c9933": {
        "name": "bookworm-26f2e57c9933",
        "label": "bookworm",
        "origin": "debian:bookworm",
        "version": "6.1.192",
        "release": "6.1.0-56-amd64",
        "build_id": "26f2e57c9933",
    },
    "sid-6a33775e282b": {
        "name": "sid-6a33775e282b",
        "label": "sid",
        "origin": "debian:sid",
        "version": "7.2.13",
        "release": "7.2.13+deb14-amd64",
        "build_id": "6a33775e282b",
    },
}
PARAMS = ["anon-a", "anon-b", "shmem-a"]
CLASS_OF = {"PASS": "pass", "SKIP": "skip", "ERROR": "infrastructure", "FAIL": "regression"}


def nodeid(kernel: str, params: str) -> str:
    label = KERNELS[kernel]["label"]
    return f"suites/test_collapse.py::test_eligibility[{label}-{params}]@{kernel}"


def record(kernel: str, params: str, verdict: str = "PASS", info: dict[str, object] | None = None) -> dict[str, object]:
    info = info or KERNELS[kernel]
    return {
        "nodeid": nodeid(kernel, params) if info is KERNELS.get(kernel) else f"t[{info['label']}-{params}]@{info['name']}",
        "test": "eligibility",
        "case_id": f"{info['label']}-{params}",
        "params_id": params,
        "kernel": info["name"],
        "kernel_info": info,
        "spec": "upstream",
        "rule": "A0",
        "group": "eligibility",
        "verdict": verdict,
        "class": CLASS_OF[verdict],
        "message": "A0: expected ok" if verdict == "FAIL" else None,
    }


def header(**changes: object) -> dict[str, object]:
    run: dict[str, object] = {
        "run_id": "r1",
        "rule_book": "1",
        "specs": ["upstream"],
        "rules": {"A0": "a rule"},
        "kernel_origins": ["debian:bullseye", "debian:bookworm", "debian:bookworm-backports", "debian:sid"],
        "planned_cases": {name: [nodeid(name, p) for p in PARAMS] for name in KERNELS},
        "tool_commit": "1cc4eb86a01f4cc81ff93fb29ed47cdb995aeee0",
    }
    return {**run, **changes}


def killed_run(run_dir: Path, verdict: str = "PASS") -> Path:
    """What a SIGKILL leaves: run.json with 4 kernel origins and no finished mark, every case of
    bookworm, 2 of 3 on sid (the first one's verdict VERDICT) and a torn last record."""
    log = ResultsLog(run_dir, header())
    log.append(record("bookworm-26f2e57c9933", "anon-a", verdict))
    for params in PARAMS[1:]:
        log.append(record("bookworm-26f2e57c9933", params))
    for params in PARAMS[:2]:
        log.append(record("sid-6a33775e282b", params))
    log.close()
    with (run_dir / "results.jsonl").open("a") as torn:
        torn.write('{"class": "pass", "kernel": "sid-6a')
    return run_dir


def _reports(
    *args: str | Path, capture_output: bool = False, stdout: int | IO[str] | None = None, stderr: int | IO[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "reports", *map(str, args)]
    return subprocess.run(command, cwd=REPO, text=True, env=env, capture_output=capture_output, stdout=stdout, stderr=stderr)


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return _reports(*args, capture_output=True)


# 1. A run that did not finish is INCOMPLETE (6), and every report names what is missing.


def test_a_killed_run_is_incomplete_and_every_report_names_what_is_missing(tmp_path: Path) -> None:
    proc = _run("render", killed_run(tmp_path))
    assert proc.returncode == Exit.INCOMPLETE, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("MADV_COLLAPSE conformance INCOMPLETE: ")
    for gap in (
        "on 2 of 4 planned kernels",
        "2 planned kernels not run (debian:bullseye, debian:bookworm-backports)",
        "1 of 3 planned cases not run on sid-6a33775e282b",
        "1 torn record",
        "no finished mark",
    ):
        assert gap in first, gap
    results = load(tmp_path)
    assert results.completeness.incomplete and exit_status(results) is Exit.INCOMPLETE
    missing = "1 of 3 planned cases not run on sid-6a33775e282b"
    for name in ("matrix.txt", "summary.txt", "matrix.md", "email.txt", "report.html", "kcidb.json", "junit-sid.xml", "ktap-sid.txt"):
        text = " ".join((tmp_path / name).read_text().split())
        assert missing in text and "debian:bookworm-backports" in text, name


def test_not_planned_and_planned_but_not_run_are_different_cells(tmp_path: Path) -> None:
    killed_run(tmp_path)
    extra = record("bookworm-26f2e57c9933", "only-bookworm")  # a case sid never planned
    with (tmp_path / "results.jsonl").open("a") as log:
        log.write("\n" + json.dumps(extra) + "\n")
    results = fold_log(tmp_path, json.loads((tmp_path / "run.json").read_text()))
    assert results.completeness.not_run == {(("upstream", "eligibility", "shmem-a"), "sid-6a33775e282b")}
    rows = {
        line.split()[0]: line.split()[1:] for line in render_text(results).split("Every case:")[1].splitlines() if line.startswith("    ")
    }
    assert rows["shmem-a"] == ["PASS", "MISS"] and rows["only-bookworm"] == ["PASS", "·"]
    legend = " ".join(render_text(results).split())
    assert "· = not planned" in legend and "MISS 3/12 = 3 of the 12 planned cases not run" in legend
    overview = render_summary(results)
    assert re.search(r"A0 +PASS 4 +MISS 1/3", overview), overview
    markdown = render_markdown(results)
    assert "| `eligibility[shmem-a]` | PASS | MISS |" in markdown and "| `eligibility[only-bookworm]` | PASS | · |" in markdown
    cells = mapping(next(r for r in mappings(page_data(results)["rows"]) if r["label"] == "eligibility[shmem-a]")["cells"])
    assert cells["sid-6a33775e282b"] == {"verdict": "MISS"}
    kcidb = render_kcidb(results)
    schema.V5_3.validate(kcidb)
    assert [t["path"] for t in kcidb["tests"] if t["status"] == "MISS"] == ["madv_collapse.eligibility.shmem-a"]


def test_a_regression_outranks_an_unfinished_run_and_the_summary_says_both(tmp_path: Path) -> None:
    proc = _run("render", killed_run(tmp_path, verdict="FAIL"))
    assert proc.returncode == Exit.REGRESSION
    assert proc.stdout.startswith("MADV_COLLAPSE conformance REGRESSION (INCOMPLETE): 1 regression")


def test_a_finished_run_with_every_planned_case_is_complete() -> None:
    cases = [record(name, p) for name in KERNELS for p in PARAMS]
    results = Results.from_json(
        {"run": header(kernel_origins=["debian:bookworm", "debian:sid"], finished="x"), "kernels": list(KERNELS.values()), "cases": cases}
    )
    assert not results.completeness.incomplete and exit_status(results) is Exit.CLEAN
    assert (
        summary_line(results).startswith("MADV_COLLAPSE conformance CLEAN:") and "MISS" not in render_text(results).split("Every case:")[1]
    )


def test_completeness_is_decided_once_and_every_report_reads_it() -> None:
    """Each report prints the one Completeness the results carry, never its own reckoning."""
    results = Results.from_json(
        {
            "run": header(finished="x", kernel_origins=[]),
            "kernels": [KERNELS["sid-6a33775e282b"]],
            "cases": [record("sid-6a33775e282b", "anon-a")],
        }
    )
    results.completeness = Completeness(finished=True, cases_not_run=(("marker-kernel", 7, 9),), plan_known=True)
    sid = KERNELS["sid-6a33775e282b"]
    texts = [
        summary_line(results),
        render_text(results),
        render_markdown(results),
        render_email(results),
        json.dumps(page_data(results)),
        json.dumps(render_kcidb(results)),
        junit.render(results, sid),
        ktap.render(results, sid),
    ]
    assert all("7 of 9 planned cases not run on marker-kernel" in " ".join(text.split()) for text in texts)
    assert exit_status(results) is Exit.INCOMPLETE


def test_a_resumed_log_keeps_the_record_after_a_torn_line(tmp_path: Path) -> None:
    """--resume appends to a log whose last line a kill tore: the next record starts a line of its own."""
    killed_run(tmp_path)
    log = ResultsLog(tmp_path, header())
    log.append(record("sid-6a33775e282b", "shmem-a"))
    log.close()
    results = fold_log(tmp_path, {**header(), "finished": "x"})
    assert len(results.cases) == 6 and results.completeness.torn_records == 0
    assert results.completeness.kernels_not_run and not results.completeness.cases_not_run


def test_merge_keeps_an_unfinished_run_unfinished(tmp_path: Path) -> None:
    killed_run(tmp_path / "a")
    render_run(tmp_path / "a", fold_log(tmp_path / "a", header()))  # what `render` of the killed run writes
    proc = _run("merge", tmp_path / "a", "--out", tmp_path / "merged")
    assert proc.returncode == Exit.INCOMPLETE, proc.stderr
    merged = load(tmp_path / "merged")
    assert merged.completeness.torn_records == 1 and not merged.completeness.finished
    assert merged.completeness.cases_not_run == (("sid-6a33775e282b", 1, 3),)


# 2. A diff with nothing to compare is an error (7), pairing across versions needs --pair-any,
#    and an unfinished side is named.


def _document(tmp_path: Path, name: str, kernels: list[str], **run: object) -> Path:
    """A finished run's results document, TMP_PATH/NAME."""
    path = tmp_path / name
    cases = [record(k, p) for k in kernels for p in PARAMS]
    path.write_text(
        json.dumps(
            {
                "run": {**header(kernel_origins=[], planned_cases={}), "finished": "x", **run},
                "kernels": [KERNELS[k] for k in kernels],
                "cases": cases,
            }
        )
    )
    return path


def test_diff_with_no_kernel_pair_is_an_error_never_clean(tmp_path: Path) -> None:
    base = _document(tmp_path, "base.json", ["bookworm-26f2e57c9933"])
    new = _document(tmp_path, "new.json", ["sid-6a33775e282b"])
    proc = _run("diff", base, new)
    assert proc.returncode == Exit.NOTHING_COMPARED and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "nothing compared" in proc.stderr and "--pair-any" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pairing_kernels_of_different_versions_needs_pair_any_and_says_so(tmp_path: Path) -> None:
    base = _document(tmp_path, "base.json", ["bookworm-26f2e57c9933"])
    new = _document(tmp_path, "new.json", ["sid-6a33775e282b"])
    proc = _run("diff", base, new, "--pair-any")
    assert proc.returncode == Exit.CLEAN, proc.stderr
    assert "pairing: --pair-any: paired bookworm 6.1.192 with sid 7.2.13 (different versions)" in proc.stdout.splitlines()[1]
    assert "over 1 kernel pairs" in proc.stdout.splitlines()[0]


def test_a_diff_with_an_unfinished_side_says_so(tmp_path: Path) -> None:
    base = _document(tmp_path, "base.json", list(KERNELS))
    killed_run(tmp_path / "new")
    render_run(tmp_path / "new", fold_log(tmp_path / "new", header()))
    proc = _run("diff", base, tmp_path / "new")
    assert proc.returncode == Exit.INCOMPLETE, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("MADV_COLLAPSE conformance diff INCOMPLETE:") and "new run incomplete: " in first and "1 torn record" in first
    result = diff(load(tmp_path / "new"), Results.from_json(json.loads(base.read_text())))
    assert "base run incomplete" in render_diff(result, load(tmp_path / "new")).splitlines()[0]


# 3. Two kernels of one label never share a file or a column.


def _two_builds(label: str = "bookworm") -> list[dict[str, object]]:
    first = {**KERNELS["bookworm-26f2e57c9933"], "label": label}
    second = {**first, "name": f"{label}-26f2e5aaaaaa", "build_id": "26f2e5aaaaaa", "origin": "/src/linux-patched"}
    first = {**first, "name": f"{label}-26f2e57c9933"}
    return [first, second]


def test_two_trees_of_one_release_in_one_run_get_their_own_files(tmp_path: Path) -> None:
    base, patched = _two_builds("6.1.0")
    cases = [record("", p, info=k) for k in (base, patched) for p in PARAMS]
    results = Results.from_json(
        {"run": header(kernel_origins=[], planned_cases={}, finished="x"), "kernels": [base, patched], "cases": cases}
    )
    assert display_names(results.kernels) == {base["name"]: "6.1.0-26f2e57", patched["name"]: "6.1.0-26f2e5a"}
    render_run(tmp_path, results)
    for name in ("junit-6.1.0-26f2e57.xml", "junit-6.1.0-26f2e5a.xml"):
        assert ET.parse(tmp_path / name).getroot().get("tests") == "3"
    assert {p.name for p in tmp_path.glob("ktap-*.txt")} == {"ktap-6.1.0-26f2e57.txt", "ktap-6.1.0-26f2e5a.txt"}
    assert "| 6.1.0-26f2e57 6.1.192 | 6.1.0-26f2e5a 6.1.192 |" in render_markdown(results)


def test_merging_two_runs_with_a_bookworm_each_keeps_both_kernels_files(tmp_path: Path) -> None:
    parts = []
    for index, kernel in enumerate(_two_builds()):
        path = tmp_path / f"part{index}.json"
        cases = [record("", p, info=kernel) for p in PARAMS]
        path.write_text(
            json.dumps(
                {"run": header(kernel_origins=[kernel["origin"]], planned_cases={}, finished="x"), "kernels": [kernel], "cases": cases}
            )
        )
        parts.append(path)
    proc = _run("merge", *parts, "--out", tmp_path / "merged")
    assert proc.returncode == Exit.CLEAN, proc.stdout + proc.stderr
    suites = [ET.parse(p).getroot() for p in sorted((tmp_path / "merged").glob("junit-*.xml"))]
    assert [s.get("tests") for s in suites] == ["3", "3"] and len({s.get("name") for s in suites}) == 2
    assert len(list((tmp_path / "merged").glob("ktap-*.txt"))) == 2


# 4. One render whichever spelling; a record whose class contradicts its verdict is refused.


def test_render_run_and_render_its_results_json_agree_and_keep_a_hand_edit(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cases = [record(k, p) for k in KERNELS for p in PARAMS]
    log = ResultsLog(run_dir, header(finished="x"))
    for case in cases:
        log.append(case)
    log.close()
    render_run(run_dir, fold_log(run_dir, header(finished="x")))
    edited = json.loads((run_dir / "results.json").read_text())
    edited["cases"][0]["verdict"], edited["cases"][0]["class"] = "FAIL", "regression"
    (run_dir / "results.json").write_text(json.dumps(edited))
    outcomes = []
    for target in (run_dir, run_dir / "results.json"):
        proc = _run("render", target)
        outcomes.append((proc.returncode, proc.stdout.splitlines()[0]))
        assert len(proc.stderr.strip().splitlines()) == 1 and "results.json" in proc.stderr and "results.jsonl disagree" in proc.stderr
        assert "FAIL/regression in results.json, PASS/pass in results.jsonl" in proc.stderr
        assert json.loads((run_dir / "results.json").read_text())["cases"][0]["verdict"] == "FAIL"  # never overwritten
    assert outcomes[0] == outcomes[1] and outcomes[0][0] == Exit.REGRESSION
    assert load(run_dir / "results.from-log.json").cases[0].verdict == "PASS"


@pytest.mark.parametrize("verdict,case_class", [("FAIL", "pass"), ("PASS", "regression"), ("SKIP", "infrastructure"), ("ERROR", "pass")])
def test_a_record_whose_class_contradicts_its_verdict_is_refused(tmp_path: Path, verdict: str, case_class: str) -> None:
    document = _document(tmp_path, "results.json", list(KERNELS))
    data = json.loads(document.read_text())
    data["cases"][1]["verdict"], data["cases"][1]["class"] = verdict, case_class
    document.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=f"verdict {verdict} contradicts class {case_class}"):
        load(tmp_path)
    proc = _run("render", tmp_path)
    assert proc.returncode == Exit.USAGE and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


# 5. A closed stdout is no traceback.


def test_render_into_a_closed_pipe_exits_141_without_a_traceback(tmp_path: Path) -> None:
    _document(tmp_path, "results.json", list(KERNELS))
    read, write = os.pipe()
    os.close(read)  # closed before the command writes: every write to stdout fails (EPIPE)
    try:
        proc = _reports("render", tmp_path, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert proc.returncode == Exit.CLOSED_PIPE and "Traceback" not in proc.stderr, proc.stderr


# 6. Every report names the tool and its commit.


def test_every_report_names_the_tool_and_its_commit() -> None:
    results = Results.from_json(
        {"run": header(finished="x"), "kernels": list(KERNELS.values()), "cases": [record(k, p) for k in KERNELS for p in PARAMS]}
    )
    kernel = KERNELS["sid-6a33775e282b"]
    for text in (
        render_email(results),
        render_text(results),
        render_markdown(results),
        json.dumps(page_data(results)),
        junit.render(results, kernel),
        ktap.render(results, kernel),
        json.dumps(render_kcidb(results)),
    ):
        assert "collapse-conformance 1cc4eb86a01f" in text


def test_the_recorder_records_the_tool_commit_and_the_plan(tmp_path: Path) -> None:
    commit = tool_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    recorder = Recorder(tmp_path, {"run_id": "r", "finished": "stale", "exit_status": 0})
    assert "finished" not in recorder.run and recorder.run["tool"] == "collapse-conformance"
    ids = [nodeid("sid-6a33775e282b", p) for p in PARAMS]
    recorder.pytest_xdist_node_collection_finished(None, [*ids, "suites/unit/test_x.py::test_y"])
    assert recorder.run["planned_cases"] == {"sid-6a33775e282b": ids}
    assert kernel_of_nodeid(ids[0]) == "sid-6a33775e282b" and kernel_of_nodeid("a::b[c@d]") is None
    plain = Recorder(tmp_path / "plain", {"run_id": "p"})
    items = [SimpleNamespace(nodeid=f"t[{p}]", get_closest_marker=lambda name: SimpleNamespace(args=("k-1",))) for p in PARAMS]
    plain.pytest_collection_finish(SimpleNamespace(items=items))  # type: ignore[arg-type]  # a stand-in Session: only .items is read
    assert plain.run["planned_cases"] == {"k-1": [f"t[{p}]" for p in PARAMS]}


# 7. The case ids an email lists select their cases with pytest -k.


def test_the_ids_an_email_lists_select_their_cases_with_pytest_k() -> None:
    """pytest's own -k engine (its Expression and KeywordMatcher: a case-insensitive substring of any
    of the item's names, test_TEST[CASE_ID] among them) over the sample's cases, named as the suite
    names them: each id listed under 'cases' selects its case, and the lines of one list joined are
    a -k expression selecting all of them and nothing else."""
    results = load(SAMPLE)
    items = {f"test_{case.test}[{case.case_id}]" for case in results.cases}
    lines = render_email(results).splitlines()
    groups = []
    for index, line in enumerate(lines):
        if line.strip().startswith("cases"):
            block = [line.split(":", 1)[1]]
            for follow in lines[index + 1 :]:
                if not follow.startswith("      "):
                    break
                block.append(follow)
            groups.append(" ".join(" ".join(block).split()))
    assert groups

    def selected(expression: str) -> set[str]:
        compiled = Expression.compile(expression)
        return {item for item in items if compiled.evaluate(KeywordMatcher(frozenset({item, "test_collapse.py", "suites", "xdist_group"})))}

    for listed in groups:
        words = re.findall(r"\w+\[[^\]\s]+\]", listed)
        assert all(selected(word) == {f"test_{word}"} for word in words), listed
        assert selected(listed) == {f"test_{word}" for word in words}, listed
