"""Harness self-tests, collected only with --selftest: the guest misbehaves on purpose.

What matters is the verdict the harness records (checked by suites/harness/test_reliability.py):
a panic or a hang is ERROR with the console's evidence and the run goes on; a splat is FAIL;
the guest cannot write to the host outside its results directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.record import ConformanceFailure
from suites import rulebook
from suites.test_collapse import record_reply
from vm.machine import GuestVM
from vm.protocol import CaseReply


def test_selftest(request: pytest.FixtureRequest, case: rulebook.Case, guest: GuestVM) -> None:
    action = case.params["action"]
    # The repository is on the host root the guest sees read-only; the results directory is writable.
    forbidden = Path(__file__).parent / f".isolation-probe-{case.kernel.name}"
    allowed = guest.results_dir / "isolation-probe"
    reply = CaseReply.of(guest.run(request.node.nodeid, {"selftest": action, "argument": f"{forbidden}:{allowed}"}))
    observed = reply.observed
    record_reply(request, reply, observed)
    if action == "isolation":
        # The guest sees the host root read-only (EROFS) or, where vng lays a throwaway overlay on
        # it (seen for a checkout under /tmp), writes that never reach the host: either is isolation.
        if forbidden.exists():
            forbidden.unlink()
            raise ConformanceFailure(f"the guest wrote to the host at {forbidden}: {observed}")
        if observed["allowed"] is not None or not allowed.exists():
            raise ConformanceFailure(f"the guest could not write its results directory {allowed}: {observed}")
