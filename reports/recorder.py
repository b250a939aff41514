"""pytest plugin on the controller: writes each case's record as it finishes, renders reports at the end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reports import render_run
from reports.results import ResultsLog

RECORD_KEY = "collapse"


class Recorder:
    def __init__(self, run_dir: Path, run: dict[str, object]) -> None:
        self.run_dir = run_dir
        self.run = run
        self.log = ResultsLog(run_dir)
        self.document: dict[str, object] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, record in report.user_properties:
            if key == RECORD_KEY:
                self.log.append(record)  # type: ignore[arg-type]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Also on Ctrl-C and SIGTERM: the matrix of what finished is still written."""
        self.log.close()
        if self.log.path.exists() and self.log.path.stat().st_size:
            self.run["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.run["exit_status"] = int(session.exitstatus)
            self.document = render_run(self.run_dir, self.run)

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.document is None:
            return
        terminalreporter.section("MADV_COLLAPSE conformance matrix")
        terminalreporter.write((self.run_dir / "matrix.txt").read_text())
        terminalreporter.write_line(f"reports: {self.run_dir}")
