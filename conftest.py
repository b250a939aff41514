"""pytest glue: kernels from --kernel, cases from the rule book, one VM per kernel, a verdict per case."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.recorder import RECORD_KEY, Recorder
from reports.results import read_log
from suites import rulebook
from vm import accel, kernels
from vm.errors import UserError
from vm.machine import GuestVM, HarnessError, VMConfig
from vm.pool import VMPool

REPO = Path(__file__).resolve().parent
KERNELS = pytest.StashKey[dict[str, kernels.Kernel]]()
CASE_RECORD = pytest.StashKey[dict[str, object]]()
SELFTESTS = ("panic", "hang", "splat", "isolation", "noop")


def default_cache() -> Path:
    return Path(os.environ.get("COLLAPSE_CACHE") or Path.home() / ".cache" / "collapse-conformance")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("collapse-conformance")
    group.addoption(
        "--kernel",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"debian:SUITE, a built kernel tree, or a vmlinuz; repeatable (default: {' '.join(kernels.DEFAULT_KERNELS)})",
    )
    group.addoption(
        "--spec",
        action="append",
        default=[],
        choices=rulebook.SPECS,
        help="rule set to check; repeatable: the first is checked in full, the others beside it on their own rules "
        f"(default: {' '.join(rulebook.DEFAULT_SPECS)})",
    )
    group.addoption(
        "--cache-dir", type=Path, default=None, help="kernels and apt state (default: $COLLAPSE_CACHE or ~/.cache/collapse-conformance)"
    )
    group.addoption("--run-dir", type=Path, default=None, help="where results go (default: reports/out/RUN_ID)")
    group.addoption("--accel", choices=("auto", "kvm", "tcg"), default="auto", help="VM accelerator (default: auto, probed once per host)")
    group.addoption("--guest-memory", default="2G", help="guest RAM (default: 2G)")
    group.addoption("--guest-cpus", type=int, default=0, help="vCPUs per VM (default: 0 = host cores / xdist workers)")
    group.addoption("--case-timeout", type=float, default=60.0, help="seconds per case under KVM, x5 under TCG (default: 60)")
    group.addoption(
        "--selftest",
        action="append",
        default=[],
        choices=SELFTESTS,
        help="also run a harness self-test case per kernel: a guest that panics, hangs, prints a splat or writes to the host",
    )
    group.addoption("--resume", type=Path, metavar="RUN_DIR", help="finish an interrupted run: only cases with no verdict in RUN_DIR run")
    group.addoption("--repeat", type=int, default=1, metavar="N", help="run every case N times; repeats that disagree are FLAKY")
    group.addoption("--vm-per-case", action="store_true", help="boot a fresh VM for every case (slow; for the benchmark)")
    group.addoption("--boot-timeout", type=float, default=300.0, help="seconds for a VM to boot and start its agent (default: 300)")


def rule_specs(config: pytest.Config) -> list[str]:
    """The specs to check, in order and without repeats; the first is checked on every case."""
    return list(dict.fromkeys(config.getoption("spec") or rulebook.DEFAULT_SPECS))


def kernel_specs(config: pytest.Config) -> list[str]:
    return config.getoption("kernel") or list(kernels.DEFAULT_KERNELS)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _needs_kernels(config: pytest.Config) -> bool:
    """Whether the run collects end-to-end cases: unit and harness tests need no kernel."""
    no_kernel = [REPO / "suites" / "unit", REPO / "suites" / "harness"]
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [Path.cwd()]
    return any(not any(p.is_relative_to(d) for d in no_kernel) for p in paths)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): cases of one kernel share a worker and its VM")
    if _needs_kernels(config):
        resolved_kernels(config)  # bad input stops the run here, as one line, before anything starts
    if _is_worker(config):
        config.collapse_run_dir = Path(config.workerinput["collapse_run_dir"])  # type: ignore[attr-defined]
        return
    signal.signal(signal.SIGTERM, _interrupt)
    resume: Path | None = config.getoption("resume")
    if resume is not None:
        if not (resume / "results.jsonl").exists():
            raise pytest.UsageError(f"--resume {resume}: no results.jsonl there; pass a run directory such as reports/out/latest")
        run_dir = resume.resolve()
    else:
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        # Absolute: vng runs from a kernel tree's directory, and the guest's rwdir must still resolve.
        run_dir = (config.getoption("run_dir") or REPO / "reports" / "out" / run_id).resolve()
    config.collapse_run_dir = run_dir  # type: ignore[attr-defined]
    specs = kernel_specs(config)
    run: dict[str, object] = {
        "run_id": run_dir.name,
        "kernel_specs": specs,
        "repeat": config.getoption("repeat"),
        "spec": " + ".join(rule_specs(config)),
        "specs": rule_specs(config),
        "rule_book": rulebook.load().version,
        "rules": {rule.id: rule.statement for rule in rulebook.load().rules},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(config.invocation_params.args),
        "host": os.uname().nodename,
    }
    if resume is not None and (run_dir / "results.json").exists():
        previous = json.loads((run_dir / "results.json").read_text())["run"]
        run = {**previous, "resumed": [*previous.get("resumed", []), run["started"]]}
    config.pluginmanager.register(Recorder(run_dir, run), "collapse-recorder")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (CI timeout, kill) ends the run like Ctrl-C: pytest still writes the reports."""
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # type: ignore[no-untyped-def]
    """xdist hook: workers write into the controller's run directory."""
    node.workerinput["collapse_run_dir"] = str(node.config.collapse_run_dir)


def cache_dir(config: pytest.Config) -> Path:
    return config.getoption("cache_dir") or default_cache()


class CacheLock:
    """Serialises kernel downloads and probes between concurrent runs and xdist workers."""

    def __init__(self, cache: Path) -> None:
        cache.mkdir(parents=True, exist_ok=True)
        self.path = cache / ".lock"

    def __enter__(self) -> None:
        self.file = self.path.open("w")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def resolved_kernels(config: pytest.Config) -> dict[str, kernels.Kernel]:
    """--kernel specs resolved once per process; only when some test needs a kernel."""
    if KERNELS not in config.stash:
        specs = kernel_specs(config)
        cache = cache_dir(config)
        try:
            accel.require_qemu()
            with CacheLock(cache):
                found = [kernels.resolve(spec, cache) for spec in specs]
        except UserError as err:
            raise pytest.UsageError(str(err)) from None
        config.stash[KERNELS] = {k.name: k for k in found}
    return config.stash[KERNELS]


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
                rulebook.Case("selftest", {"action": a}, kernel.name, kernel.label, primary, f"S.{a}", "selftest")
                for a in metafunc.config.getoption("selftest")
            ]
        else:
            planned = rulebook.plan(book, test, kernel.name, kernel.label, kernel.version, kernel.config, primary)
            for spec in others:
                planned += rulebook.plan(book, test, kernel.name, kernel.label, kernel.version, kernel.config, spec, beside=primary)
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Kernel-major order, so each VM boots once; kernels with the most cases to run go first."""
    unwanted = []
    if not config.getoption("selftest"):
        unwanted += [item for item in items if getattr(item, "originalname", "") == "test_selftest"]
    if config.getoption("resume"):
        done = {_plain_nodeid(str(r["nodeid"])) for r in read_log(config.getoption("resume") / "results.jsonl")}
        unwanted += [item for item in items if _plain_nodeid(item.nodeid) in done]
    if unwanted:
        config.hook.pytest_deselected(items=unwanted)
        dropped = set(map(id, unwanted))
        items[:] = [item for item in items if id(item) not in dropped]
    runnable: dict[str, int] = {}
    for item in items:
        case = _case_of(item)
        if case is not None and not case.skip:
            runnable[case.kernel] = runnable.get(case.kernel, 0) + 1

    def key(indexed: tuple[int, pytest.Item]) -> tuple[int, str, int]:
        index, item = indexed
        case = _case_of(item)
        if case is None:
            return (1, "", index)
        return (-runnable.get(case.kernel, 0), case.kernel, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def memory_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """-n auto: one worker per kernel, at most one per core, and only as many VMs as memory holds."""
    cores = os.cpu_count() or 1
    available = next(
        int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemAvailable:")
    )
    # Each VM costs its guest RAM plus about 1 GiB for QEMU, vng and the worker itself.
    per_vm = memory_bytes(config.getoption("guest_memory")) + (1 << 30)
    kernel_count = len(kernel_specs(config))
    return max(1, min(cores, available // per_vm, kernel_count))


def guest_cpus(config: pytest.Config) -> int:
    """Measured under TCG on 2 cores: two 2-vCPU guests boot in 78-112 s, two 1-vCPU guests in 21-23 s."""
    if config.getoption("guest_cpus"):
        return int(config.getoption("guest_cpus"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


@pytest.fixture(scope="session")
def vm_pool(pytestconfig: pytest.Config) -> Iterator[VMPool]:
    found = resolved_kernels(pytestconfig)
    cache = cache_dir(pytestconfig)
    with CacheLock(cache):
        chosen, reason = accel.choose(pytestconfig.getoption("accel"), next(iter(found.values())), cache)
    config = VMConfig(
        accel=chosen,
        memory=pytestconfig.getoption("guest_memory"),
        cpus=guest_cpus(pytestconfig),
        boot_timeout_s=pytestconfig.getoption("boot_timeout"),
        case_timeout_s=pytestconfig.getoption("case_timeout"),
    )
    pool = VMPool(config, pytestconfig.collapse_run_dir)  # type: ignore[attr-defined]
    pool.accel_reason = reason  # type: ignore[attr-defined]
    yield pool
    pool.close()


@pytest.fixture
def guest(request: pytest.FixtureRequest, case: rulebook.Case, vm_pool: VMPool) -> Iterator[GuestVM]:
    kernel = resolved_kernels(request.config)[case.kernel]
    request.node.stash[CASE_RECORD]["kernel_info"].update(
        accel=vm_pool.config.accel,
        accel_reason=vm_pool.accel_reason,  # type: ignore[attr-defined]
        cpus=vm_pool.config.cpus,
        memory=vm_pool.config.memory,
    )
    vm = vm_pool.get(kernel)
    request.node.stash[CASE_RECORD]["kernel_info"]["boot_s"] = round(vm_pool.boots[kernel.name], 2)
    yield vm
    if request.config.getoption("vm_per_case"):
        vm_pool.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    case = _case_of(item)
    if case is None:
        return
    kernel = resolved_kernels(item.config)[case.kernel]
    item.stash[CASE_RECORD] = {
        "nodeid": item.nodeid,
        "test": case.test,
        "case_id": item.callspec.id,  # type: ignore[attr-defined]  # the case id, with -repN when repeated
        "params_id": case.params_id,
        "params": case.params,
        "kernel": kernel.name,
        "kernel_info": {**kernel.describe(), "name": kernel.name, "accel": None, "boot_s": None},
        "spec": case.spec,
        "repeat": case.repeat,
        "rule": case.rule,
        "group": case.group,
        "expected": case.expect,
        "observed": None,
        "message": case.skip,
        "console": None,
    }


def _case_of(item: pytest.Item) -> rulebook.Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("case") if callspec else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Turn pytest outcomes into verdicts: a harness failure is ERROR, a rule mismatch is FAIL."""
    report: pytest.TestReport = yield  # type: ignore[misc]
    case = _case_of(item)
    if case is None or (report.when == "setup" and report.passed) or (report.when == "teardown" and not report.failed):
        return report  # type: ignore[return-value]
    record = dict(item.stash.get(CASE_RECORD, {}) or {"nodeid": item.nodeid})
    if not record.get("kernel_info"):
        return report  # type: ignore[return-value]
    if getattr(report, "wasxfail", None):  # a documentation discrepancy, or a FAIL of a further spec
        verdict = "FAIL"
        record["message"] = report.wasxfail
    elif report.skipped:
        verdict = "SKIP"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record["message"] = reason.removeprefix("Skipped: ")
    elif report.passed:
        verdict = "PASS"
        record["message"] = None
    else:
        error = call.excinfo.value if call.excinfo else None
        verdict = "FAIL" if report.when == "call" and isinstance(error, AssertionError) else "ERROR"
        record["message"] = str(error) if error is not None else report.longreprtext.splitlines()[-1]
        if isinstance(error, HarnessError):
            record["console"] = error.console
    record["verdict"] = verdict
    record["duration_s"] = round(report.duration, 4)
    record["start"], record["stop"] = report.start, report.stop
    record["worker"] = os.environ.get("PYTEST_XDIST_WORKER", "main")
    report.user_properties.append((RECORD_KEY, record))
    return report  # type: ignore[return-value]
