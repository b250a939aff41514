"""Each case's record: built when the case is set up, and given its verdict and class once, in the
report hook (a rule mismatch is FAIL with the class the judge gave it; anything else that goes
wrong is ERROR, infrastructure). The record then crosses to the controller as plain JSON."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from reports.record import OUTCOME_CLASS, CaseRecord, ConformanceFailure, Verdict
from reports.recorder import RECORD_KEY
from suites.plugin.planning import case_of, kernel_of
from vm.machine import HarnessError

CASE_RECORD = pytest.StashKey[CaseRecord]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    case = case_of(item)
    if case is None or not isinstance(item, pytest.Function):
        return
    kernel = kernel_of(case)
    item.stash[CASE_RECORD] = CaseRecord(
        nodeid=item.nodeid,
        test=case.test,
        case_id=item.callspec.id,  # the case id, with -repN when repeated
        params_id=case.params_id,
        params=case.params,
        kernel=kernel.name,
        kernel_info={**kernel.describe(), "name": kernel.name, "accel": None, "boot_s": None},
        spec=case.spec,
        repeat=case.repeat,
        rule=case.rule,
        group=case.group,
        expected=case.expect,
        message=case.skip,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    case = case_of(item)
    if case is None or (report.when == "setup" and report.passed) or (report.when == "teardown" and not report.failed):
        return report
    record = item.stash.get(CASE_RECORD, None)
    if record is None:  # setup failed before the record existed: no kernel, nothing to record
        return report
    if getattr(report, "wasxfail", None):  # a documentation discrepancy, or a FAIL of a further spec
        record.verdict, record.message = Verdict.FAIL, report.wasxfail  # the judge stored the class
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record.verdict, record.message = Verdict.SKIP, reason.removeprefix("Skipped: ")
        record.case_class = OUTCOME_CLASS[record.verdict]
    elif report.passed:
        record.verdict, record.message = Verdict.PASS, None
        record.case_class = OUTCOME_CLASS[record.verdict]
    else:
        error = call.excinfo.value if call.excinfo else None
        if report.when == "call" and isinstance(error, ConformanceFailure):
            record.verdict, record.case_class = Verdict.FAIL, error.case_class
        else:  # a harness problem is never a kernel regression
            record.verdict = Verdict.ERROR
            record.case_class = OUTCOME_CLASS[record.verdict]
        record.message = str(error) if error is not None else report.longreprtext.splitlines()[-1]
        if isinstance(error, HarnessError):
            record.console = error.console
    record.duration_s = round(report.duration, 4)
    record.start, record.stop = report.start, report.stop
    record.worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    report.user_properties.append((RECORD_KEY, record.to_json()))  # plain JSON: it crosses from xdist workers
    return report
