"""End-to-end MADV_COLLAPSE cases: each runs a real workload in a VM on a real kernel.

The grids and their cases come from suites/rules.toml (see suites/plugin/planning.py); each
grid becomes a test function here that runs the case and judges what the guest observed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.geometry import NotApplicable
from fixtures.observation import Observation, from_json
from reports.record import CaseClass, ConformanceFailure, failure_class
from suites import rulebook, splats
from suites.plugin.options import rule_specs
from suites.plugin.verdicts import CASE_RECORD
from vm.machine import GuestVM, HarnessError
from vm.protocol import CaseReply


def record_reply(request: pytest.FixtureRequest, reply: CaseReply, summary: dict[str, object], splats_count: bool = True) -> None:
    """Keep the observation with the case, and fail it on any kernel splat printed meanwhile (once
    per observation: SPLATS_COUNT is false for a further spec's case reusing the first's)."""
    record = request.node.stash[CASE_RECORD]
    record.observed = summary
    record.raw = reply.observed
    record.guest_s = reply.guest_s
    record.kmsg = reply.kmsg
    found = splats.load().splats(reply.kmsg) if splats_count else []
    if found:
        raise ConformanceFailure(f"kernel splat during the case: {'; '.join(found)}")


# One observation per (kernel, test, parameters, repeat), judged under every spec of the run: the
# cases of a second spec reuse the guest's answer instead of running the workload again.
_observations: dict[tuple[str, str, str, int], tuple[CaseReply, Observation]] = {}


def observe(request: pytest.FixtureRequest, case: rulebook.Case, guest: GuestVM) -> tuple[CaseReply, Observation]:
    """The guest's reply and the observation it carries, read into fixtures.observation's classes."""
    key = (case.kernel.name, case.test, case.params_id, case.repeat)
    if key not in _observations:
        try:
            reply = CaseReply.of(guest.run(request.node.nodeid, dict(case.params)))
        except HarnessError as error:
            skip_if_not_applicable(str(error))
            raise
        _observations[key] = (reply, from_json(Observation, reply.observed))
    return _observations[key]


NOT_APPLICABLE = f"{NotApplicable.__module__}.{NotApplicable.__name__}: {NotApplicable.PREFIX}"


def skip_if_not_applicable(error: str) -> None:
    """A case the guest could not set up on its kernel's geometry (fixtures.geometry.NotApplicable,
    e.g. blocks of 512 MiB in a small guest) is a SKIP naming why, never a verdict or an ERROR."""
    reason = next((line.removeprefix(NOT_APPLICABLE) for line in error.splitlines() if line.startswith(NOT_APPLICABLE)), None)
    if reason is not None:
        pytest.skip(f"{NotApplicable.PREFIX}{reason}")


def run_and_judge(request: pytest.FixtureRequest, case: rulebook.Case, guest: GuestVM) -> None:
    reply, observed = observe(request, case, guest)
    summary = rulebook.summarize(observed)
    if observed.geometry is not None:  # the kernel's page and block sizes, kept with its description
        request.node.stash[CASE_RECORD].kernel_info.update(page_size=observed.geometry.page, pmd_size=observed.geometry.block)
    primary = rule_specs(request.config)[0]
    record_reply(request, reply, summary, splats_count=case.spec == primary)
    mismatches = rulebook.judge(case.expect, summary)
    if mismatches:
        message = f"{case.rule}: {rulebook.failure_line(mismatches)}"
        # The class of this FAIL is decided here, once; the report hook stores it with the verdict.
        case_class = failure_class(case.group, case.spec, primary)
        if case_class is not CaseClass.REGRESSION:
            # Verdict FAIL in every report, listed apart; not a regression, so not a failing pytest run.
            request.node.stash[CASE_RECORD].case_class = case_class
            pytest.xfail(message)
        raise ConformanceFailure(message, case_class)


def _grid_test(name: str, description: str) -> Callable[[pytest.FixtureRequest, rulebook.Case, GuestVM], None]:
    def test(request: pytest.FixtureRequest, case: rulebook.Case, guest: GuestVM) -> None:
        run_and_judge(request, case, guest)

    test.__name__ = test.__qualname__ = f"test_{name}"
    test.__doc__ = description
    return test


# One test function per grid of the rule book, so a grid added to rules.toml cannot go unrun.
for _name, _grid in rulebook.load().tests.items():
    globals()[f"test_{_name}"] = _grid_test(_name, _grid.description)
