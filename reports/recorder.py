"""pytest plugin on the controller: writes each case's record as it finishes, renders reports at the
end, and sets the run's exit status from the stored classes (reports.exits.Exit).

It also completes the run header (run.json, written with the first record): the tool's commit
(tool_commit) and the cases planned per kernel (planned_cases: kernel name -> node ids), so that a
run killed half-way is reported INCOMPLETE with what it did not run (reports.record.Completeness)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from reports import render_run
from reports.exits import Exit
from reports.jsonvalues import planned_cases
from reports.record import TOOL, CaseClass, Results
from reports.results import ResultsLog, fold_log, read_log
from reports.summary import exit_status, summary_line

RECORD_KEY = "collapse"
CHECKOUT = Path(__file__).resolve().parents[1]
KERNEL_MARK = "xdist_group"  # the plugin marks each case with its kernel's name (cases of one kernel share a VM)
SESSION_END = ("finished", "exit_status")  # written when a session ends: never carried into a resumed run's header


def tool_commit(checkout: Path = CHECKOUT) -> str | None:
    """The commit of the checkout running the suite (None outside git): read now, at run time, since
    a later render may run from another checkout."""
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def kernel_of_nodeid(nodeid: str) -> str | None:
    """The kernel of a node id xdist's loadgroup suffixed with the case's group ('...]@NAME')."""
    at = nodeid.rfind("@")
    return nodeid[at + 1 :] if at > nodeid.rfind("]") else None


class Recorder:
    def __init__(self, run_dir: Path, run: dict[str, object]) -> None:
        self.run_dir = run_dir
        self.run = run
        for key in SESSION_END:
            run.pop(key, None)
        run["tool"] = TOOL
        commit = tool_commit()
        if commit and not run.get("tool_commit"):  # a resumed run keeps the commit it started with
            run["tool_commit"] = commit
        self.log = ResultsLog(run_dir, run)
        self.results: Results | None = None
        self.planned_by_worker = False

    def plan(self, nodeids: dict[str, list[str]]) -> None:
        """The cases planned per kernel: those collected now plus, for --resume, those already in the
        log and in the resumed header's plan (the run plans what it ran before too)."""
        planned = planned_cases(self.run)
        for record in read_log(self.log.path):
            planned.setdefault(str(record.get("kernel")), []).append(str(record["nodeid"]))
        for kernel, ids in nodeids.items():
            planned.setdefault(kernel, []).extend(ids)
        if planned:
            self.run["planned_cases"] = {kernel: list(dict.fromkeys(ids)) for kernel, ids in planned.items()}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Without xdist the controller collects the cases itself."""
        nodeids: dict[str, list[str]] = {}
        for item in session.items:
            mark = item.get_closest_marker(KERNEL_MARK)
            if mark is not None and mark.args:
                nodeids.setdefault(str(mark.args[0]), []).append(item.nodeid)
        if nodeids:
            self.plan(nodeids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        """Under xdist the workers collect; every worker collects the same cases, so the first says it."""
        if self.planned_by_worker:
            return
        nodeids: dict[str, list[str]] = {}
        for nodeid in ids:
            kernel = kernel_of_nodeid(nodeid)
            if kernel is not None:
                nodeids.setdefault(kernel, []).append(nodeid)
        if nodeids:
            self.plan(nodeids)
            self.planned_by_worker = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, record in report.user_properties:
            if key == RECORD_KEY and isinstance(record, dict):  # a case's record (suites/plugin/verdicts.py)
                self.log.append(record)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Also on Ctrl-C and SIGTERM: the matrix of what finished is still written."""
        self.log.close()
        if not (self.log.path.exists() and self.log.path.stat().st_size):
            return
        self.run["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.run["exit_status"] = int(session.exitstatus)
        self.results = fold_log(self.run_dir, self.run)
        status = exit_status(self.results)
        # Only a run whose failures are all judged cases gets the classes' status: a failing unit or
        # harness test in the same session keeps pytest's 1, an interrupted run pytest's 2.
        judged_failures = sum(c.case_class in (CaseClass.REGRESSION, CaseClass.INFRASTRUCTURE) for c in self.results.cases)
        if session.exitstatus == Exit.REGRESSION and status is not Exit.REGRESSION and session.testsfailed <= judged_failures:
            session.exitstatus = status
        elif session.exitstatus == pytest.ExitCode.INTERNAL_ERROR and status is Exit.REGRESSION:
            session.exitstatus = Exit.REGRESSION  # pytest's 3 would read as "infrastructure only"
        elif session.exitstatus == pytest.ExitCode.OK and status is Exit.INCOMPLETE:
            session.exitstatus = Exit.INCOMPLETE  # planned cases without a record: never a clean run
        self.run["exit_status"] = int(session.exitstatus)
        render_run(self.run_dir, self.results)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.results is None:
            return
        terminalreporter.section("MADV_COLLAPSE conformance")
        terminalreporter.write((self.run_dir / "summary.txt").read_text())
        terminalreporter.write_line(f"every case: {self.run_dir / 'matrix.txt'}; all reports: {self.run_dir}")
        terminalreporter.write_line(summary_line(self.results))  # last line too: what a CI log tail shows
