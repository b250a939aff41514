"""pytest plugin on the controller: writes each case's record as it finishes, renders reports at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports import render_run
from reports.results import ResultsLog

RECORD_KEY = "collapse"


class Recorder:
    def __init__(self, run_dir: Path, run: dict[str, object], kernel_specs: list[str]) -> None:
        self.run_dir = run_dir
        self.run = run
        self.kernel_specs = kernel_specs
        self.log = ResultsLog(run_dir)
        self.kernels: dict[str, dict[str, object]] = {}
        self.document: dict[str, object] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, record in report.user_properties:
            if key == RECORD_KEY:
                kernel: dict[str, object] = record["kernel_info"]  # type: ignore[index]
                known = self.kernels.setdefault(str(kernel["name"]), dict(kernel))
                known.update({k: v for k, v in kernel.items() if v is not None})
                self.log.append(record)  # type: ignore[arg-type]

    def ordered_kernels(self) -> list[dict[str, object]]:
        order = {spec: index for index, spec in enumerate(self.kernel_specs)}
        return sorted(self.kernels.values(), key=lambda k: (order.get(str(k["spec"]), len(order)), str(k["name"])))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.log.close()
        if self.log.path.exists() and self.log.path.stat().st_size:
            self.document = render_run(self.run_dir, self.run, self.ordered_kernels())

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.document is None:
            return
        terminalreporter.section("MADV_COLLAPSE conformance matrix")
        terminalreporter.write((self.run_dir / "matrix.txt").read_text())
        terminalreporter.write_line(f"reports: {self.run_dir}")
