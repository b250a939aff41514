"""The VM pool (one live VM per worker, booted once per kernel) and the per-case guest fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.record import CaseRecord
from suites import rulebook
from suites.plugin.kernels import resolved_kernels
from suites.plugin.options import cache_dir
from suites.plugin.planning import kernel_of
from suites.plugin.verdicts import CASE_RECORD
from vm import accel
from vm.cache import CacheLock
from vm.machine import GuestVM, VMConfig
from vm.pool import VMPool

CHECKOUT = Path(__file__).resolve().parents[2]  # the checkout whose code this worker runs
# The key of xdist's workerinput that says how many workers share this worker's host (suites/plugin/run.py).
HOST_WORKERS = "collapse_host_workers"
# What the agent's facts() tell of the guest that every record of its kernel keeps.
GUEST_FACTS = ("machine", "page_size", "hpage_pmd_size")


def guest_cpus(config: pytest.Config) -> int:
    """Measured under TCG on 2 cores: two 2-vCPU guests boot in 78-112 s, two 1-vCPU guests in 21-23 s.
    The cores are shared by the workers on this host, not by every worker of a run over several hosts."""
    if config.getoption("guest_cpus"):
        return int(config.getoption("guest_cpus"))
    workerinput: dict[str, object] = vars(config).get("workerinput", {})
    workers = int(str(workerinput.get(HOST_WORKERS) or os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    return max(1, (os.cpu_count() or 1) // workers)


@pytest.fixture(scope="session")
def vm_pool(pytestconfig: pytest.Config) -> Iterator[VMPool]:
    found = resolved_kernels(pytestconfig)
    cache = cache_dir(pytestconfig)
    with CacheLock(cache):
        # Probed with a kernel of the host's architecture if there is one: KVM cannot run another's.
        probe = next((k for k in found.values() if not k.foreign), next(iter(found.values())))
        chosen, reason = accel.choose(pytestconfig.getoption("accel"), probe, cache)
    config = VMConfig(
        accel=chosen,
        accel_reason=reason,
        memory=pytestconfig.getoption("guest_memory"),
        cpus=guest_cpus(pytestconfig),
        boot_timeout_s=pytestconfig.getoption("boot_timeout"),
        case_timeout_s=pytestconfig.getoption("case_timeout"),
    )
    run_dir: Path = vars(pytestconfig)["collapse_run_dir"]  # set by suites/plugin/run.py's pytest_configure
    pool = VMPool(config, run_dir)
    yield pool
    pool.close()


@pytest.fixture
def guest(request: pytest.FixtureRequest, case: rulebook.Case, vm_pool: VMPool) -> Iterator[GuestVM]:
    record: CaseRecord = request.node.stash[CASE_RECORD]
    config = vm_pool.config
    record.kernel_info.update(accel=config.accel, accel_reason=config.accel_reason, cpus=config.cpus, memory=config.memory)
    # Where the kernel ran: a run over several hosts (--tx popen//via=HOST) boots each kernel on one of them.
    record.kernel_info.update(host=os.uname().nodename, checkout=str(CHECKOUT))
    kernel = kernel_of(case)
    vm = vm_pool.get(kernel)
    # Per kernel: a foreign one runs under TCG with the memory its THP size needs, and the guest
    # itself says its page and THP sizes (the reports' architecture and page size come from here).
    record.kernel_info.update(accel=vm.accel, accel_reason=vm.accel_reason, memory=vm.memory)
    record.kernel_info.update({key: vm.facts.get(key) for key in GUEST_FACTS})
    record.kernel_info["boot_s"] = round(vm_pool.boots[kernel.name], 2)
    yield vm
    if request.config.getoption("vm_per_case"):
        vm_pool.close()
