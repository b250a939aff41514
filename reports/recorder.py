"""pytest plugin on the controller: writes each case's record as it finishes, renders reports at the
end, and sets the run's exit status from the stored classes (reports.exits.Exit)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reports import render_run
from reports.exits import Exit
from reports.record import CaseClass, Results
from reports.results import ResultsLog, fold_log
from reports.summary import exit_status, summary_line

RECORD_KEY = "collapse"


class Recorder:
    def __init__(self, run_dir: Path, run: dict[str, object]) -> None:
        self.run_dir = run_dir
        self.run = run
        self.log = ResultsLog(run_dir, run)
        self.results: Results | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, record in report.user_properties:
            if key == RECORD_KEY:
                self.log.append(record)  # type: ignore[arg-type]

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
        self.run["exit_status"] = int(session.exitstatus)
        render_run(self.run_dir, self.results)

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.results is None:
            return
        terminalreporter.section("MADV_COLLAPSE conformance")
        terminalreporter.write((self.run_dir / "summary.txt").read_text())
        terminalreporter.write_line(f"every case: {self.run_dir / 'matrix.txt'}; all reports: {self.run_dir}")
        terminalreporter.write_line(summary_line(self.results))  # last line too: what a CI log tail shows
