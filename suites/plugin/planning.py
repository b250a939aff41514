"""Cases from the rule book: planned per kernel and spec, repeated, ordered kernel-major (each VM
boots once), and the number of xdist workers that fits the machine."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from reports.jsonvalues import texts
from reports.results import read_log
from suites import rulebook
from suites.plugin.kernels import resolved_kernels
from suites.plugin.options import kernel_origins, rule_specs
from vm.kernels import Kernel
from vm.vng import memory_bytes

# The key of xdist's workerinput with the node ids --resume found done, read from the log on the
# controller (suites/plugin/run.py): a worker on another host has no log at that path.
DONE = "collapse_done"


def case_of(item: pytest.Item) -> rulebook.Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("case") if callspec else None


def kernel_of(case: rulebook.Case) -> Kernel:
    """The kernel a case was planned for: here always the resolved Kernel itself (--kernel)."""
    if not isinstance(case.kernel, Kernel):
        raise TypeError(f"case {case.id} was planned for {case.kernel!r}, not a resolved kernel")
    return case.kernel


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    test = metafunc.function.__name__.removeprefix("test_")
    book = rulebook.load()
    primary, *others = rule_specs(metafunc.config)
    params = []
    for kernel in resolved_kernels(metafunc.config).values():
        if test == "selftest":
            planned = [
                rulebook.Case("selftest", {"action": a}, kernel, primary, f"S.{a}", "selftest")
                for a in metafunc.config.getoption("selftest")
            ]
        else:
            planned = rulebook.plan(book, test, kernel, primary)
            for spec in others:
                planned += rulebook.plan(book, test, kernel, spec, beside=primary)
        repeat = metafunc.config.getoption("repeat")
        for case in planned:
            marks = [pytest.mark.xdist_group(kernel.name)]
            if case.skip:
                marks.append(pytest.mark.skip(reason=case.skip))
            for rep in range(1, repeat + 1):
                repeated = dataclasses.replace(case, repeat=rep)
                params.append(pytest.param(repeated, id=case.id + (f"-rep{rep}" if repeat > 1 else ""), marks=marks))
    metafunc.parametrize("case", params)


def _plain_nodeid(nodeid: str) -> str:
    """The node id without xdist's '@group' suffix."""
    return nodeid[: nodeid.rindex("@")] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid


def done_nodeids(config: pytest.Config) -> list[str]:
    """--resume: the cases of the resumed run that have a record, as the controller read them."""
    workerinput: dict[str, object] = vars(config).get("workerinput", {})
    if DONE in workerinput:
        return texts(workerinput[DONE])
    return sorted({_plain_nodeid(str(r["nodeid"])) for r in read_log(config.getoption("resume") / "results.jsonl")})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Kernel-major order, so each VM boots once; kernels with the most cases to run go first."""
    unwanted = []
    if not config.getoption("selftest"):
        unwanted += [item for item in items if getattr(item, "originalname", "") == "test_selftest"]
    if config.getoption("resume"):
        done = set(done_nodeids(config))
        unwanted += [item for item in items if _plain_nodeid(item.nodeid) in done]
    if unwanted:
        config.hook.pytest_deselected(items=unwanted)
        dropped = set(map(id, unwanted))
        items[:] = [item for item in items if id(item) not in dropped]
    runnable: dict[str, int] = {}
    for item in items:
        case = case_of(item)
        if case is not None and not case.skip:
            runnable[case.kernel.name] = runnable.get(case.kernel.name, 0) + 1

    def key(indexed: tuple[int, pytest.Item]) -> tuple[int, str, int]:
        index, item = indexed
        case = case_of(item)
        if case is None:
            return (1, "", index)
        return (-runnable.get(case.kernel.name, 0), case.kernel.name, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """-n auto: one worker per kernel, at most one per core, and only as many VMs as memory holds."""
    cores = os.cpu_count() or 1
    available = next(
        int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemAvailable:")
    )
    # Each VM costs its guest RAM plus about 1 GiB for QEMU, vng and the worker itself.
    per_vm = memory_bytes(config.getoption("guest_memory")) + (1 << 30)
    kernel_count = len(kernel_origins(config))
    return max(1, min(cores, available // per_vm, kernel_count))
