"""The harness survives the kernel: real runs of the suite, with guests that misbehave on purpose.

Each test runs pytest on the suite itself (a real kernel in a real VM) and reads the verdicts it
recorded in results.json. No time limit here is a fixed number of seconds: the first run (the
--repeat test, with the suite's default limits) measures this machine, and every later boot
timeout, case timeout and wait is a multiple of what it measured (Pace).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reports.jsonvalues import mapping
from suites import rulebook
from vm import vng
from vm.machine import TCG_SLOWDOWN
from workflows.suite import command as suite_command

REPO = Path(__file__).resolve().parents[2]
KERNEL = "debian:bookworm"
INTERRUPTED = "uffd"  # the grid the interrupted run stops in: 54 cases that all run on 6.1
# its -k expression: the grid's test function alone (-k matches substrings: test_uffd_rwp too)
INTERRUPTED_SELECT = f"test_{INTERRUPTED} and not test_{INTERRUPTED}_"
GRIDS = {name: len(test.grid()) for name, test in rulebook.load().tests.items()}
# Every limit is this many times what was measured: room for the load to change between the measuring
# run and the next (other VMs on the same cores), not for a slower machine (the measure scales with it).
SLACK = 5.0
REPEATED = "availability"
Records = dict[str, dict[str, object]]  # results.json's case records by case id
RepeatedRun = tuple[int, Records, str, Path, float]  # exit status, records, output, run directory, wall seconds
MisbehavingRun = tuple[int, Records, str, Path]


@dataclass(frozen=True)
class Pace:
    """This machine's speed, measured by one real run of the suite in this session."""

    boot_s: float  # the good kernel's boot as the suite recorded it (kernel_info.boot_s)
    run_s: float  # the whole run that booted it once: start-up, collection, boot, cases, reports
    scale: float  # the suite's multiplier of --case-timeout for the accelerator it chose

    def run_limit(self, boots: int, waits_s: float = 0.0) -> float:
        """Wall-clock limit for a suite run that boots BOOTS VMs and sits out WAITS_S seconds of its own timeouts."""
        return SLACK * (boots * self.run_s + waits_s)

    def case_timeout(self) -> str:
        """--case-timeout for a case meant to answer: the limit is one measured boot, which starts the
        same agent a case only talks to, so an answering case is well inside it and a hang costs a boot."""
        return f"{self.boot_s / self.scale:.2f}"

    def boot_timeout(self) -> str:
        """--boot-timeout for a kernel meant to boot."""
        return f"{SLACK * self.boot_s:.1f}"


def records_of(run_dir: Path) -> Records:
    if not (run_dir / "results.json").exists():
        return {}
    return {str(c["case_id"]): c for c in json.loads((run_dir / "results.json").read_text())["cases"]}


def run_suite(run_dir: Path, *args: str, limit_s: float | None) -> tuple[int, Records, str]:
    """Run the suite; return its exit status, its records by case id, and its output. LIMIT_S only
    guards against a harness that hangs; None leaves the run to the suite's own boot and case timeouts."""
    command = suite_command([KERNEL], run_dir, ["upstream"], tests=[], options=args)
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=limit_s)
    return proc.returncode, records_of(run_dir), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repeated_run(tmp_path_factory: pytest.TempPathFactory) -> RepeatedRun:
    """One case x3 on one VM with the suite's default limits: the measuring run (and the --repeat test)."""
    run_dir = tmp_path_factory.mktemp("repeat") / "run"
    started = time.monotonic()
    status, records, output = run_suite(run_dir, "suites/test_collapse.py", "-k", REPEATED, "--repeat", "3", limit_s=None)
    return status, records, output, run_dir, time.monotonic() - started


@pytest.fixture(scope="module")
def pace(repeated_run: RepeatedRun) -> Pace:
    status, records, output, _, run_s = repeated_run
    assert status == 0 and records, f"the measuring run failed, so no limit can be derived:\n{output[-3000:]}"
    info = next(iter(records.values()))["kernel_info"]
    assert isinstance(info, dict)
    measured = Pace(boot_s=float(info["boot_s"]), run_s=run_s, scale=TCG_SLOWDOWN if info["accel"] == "tcg" else 1.0)
    print(f"measured: {measured}; boot timeout {measured.boot_timeout()} s, case timeout {measured.case_timeout()} s x{measured.scale:g}")
    return measured


@pytest.fixture(scope="module")
def misbehaving_run(tmp_path_factory: pytest.TempPathFactory, pace: Pace) -> MisbehavingRun:
    """One VM panics, a fresh one proves isolation and prints a splat, hangs; a last one does nothing."""
    run_dir = tmp_path_factory.mktemp("selftest") / "run"
    selftests = [arg for action in ("panic", "isolation", "splat", "hang", "noop") for arg in ("--selftest", action)]
    hang_s = float(pace.case_timeout()) * pace.scale
    limit = pace.run_limit(boots=3, waits_s=hang_s)  # panic's VM, a fresh one until the hang, one for noop
    options = ["suites/test_selftest.py", *selftests, "--case-timeout", pace.case_timeout()]
    status, records, output = run_suite(run_dir, *options, limit_s=limit)
    return status, records, output, run_dir


def verdict(records: Records, action: str) -> dict[str, object]:
    return records[f"bookworm-{action}"]


def test_every_planned_case_has_a_verdict(misbehaving_run: MisbehavingRun) -> None:
    status, records, output, _ = misbehaving_run
    assert sorted(records) == sorted(f"bookworm-{a}" for a in ("panic", "isolation", "splat", "hang", "noop")), output
    assert status == 1  # failures and errors make the run fail


def test_panic_is_error_with_the_panic_and_the_run_goes_on(misbehaving_run: MisbehavingRun) -> None:
    _, records, _, _ = misbehaving_run
    panic = verdict(records, "panic")
    assert panic["verdict"] == "ERROR" and "VM exited" in str(panic["message"])
    assert "Kernel panic - not syncing" in str(panic["console"]), panic["console"]
    assert verdict(records, "isolation")["verdict"] == "PASS"  # on a freshly booted VM


def test_guest_cannot_write_to_the_host(misbehaving_run: MisbehavingRun) -> None:
    _, records, _, run_dir = misbehaving_run
    isolation = verdict(records, "isolation")
    assert isolation["verdict"] == "PASS", isolation
    raw = mapping(isolation["raw"])
    assert raw["allowed"] is None and raw["forbidden"] in ("EROFS", None), isolation
    assert not list((REPO / "suites").glob(".isolation-probe-*"))
    assert list(run_dir.glob("guests/*/isolation-probe"))


def test_kernel_splat_fails_the_case(misbehaving_run: MisbehavingRun) -> None:
    _, records, _, _ = misbehaving_run
    splat = verdict(records, "splat")
    assert splat["verdict"] == "FAIL"
    assert "kernel splat during the case: warning: WARNING: CPU: 0 PID: 1 at mm/khugepaged.c:0" in str(splat["message"])


def test_hang_times_out_as_error_and_the_vm_is_killed(misbehaving_run: MisbehavingRun, pace: Pace) -> None:
    _, records, _, run_dir = misbehaving_run
    hang = verdict(records, "hang")
    within = float(pace.case_timeout()) * pace.scale  # as vm.machine computes it
    assert hang["verdict"] == "ERROR" and f"no answer from the guest agent within {within:.0f} s" in str(hang["message"]), hang
    assert verdict(records, "noop")["verdict"] == "PASS"
    assert not qemu_left(run_dir)


def qemu_left(run_dir: Path) -> str:
    """QEMU processes of RUN_DIR's guests (their results directory is on the command line): other
    runs on the same machine, such as a matrix next door, have guests of their own."""
    found = subprocess.run(["pgrep", "-af", "qemu-system-x86_64 -name virtme-ng"], capture_output=True, text=True).stdout
    return "\n".join(line for line in found.splitlines() if f"path={run_dir.resolve()}/" in line)


def logged(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_interrupted_run_keeps_its_results_and_resumes(tmp_path: Path, pace: Pace) -> None:
    run_dir = tmp_path / "run"
    # A grid of 54 cases is enough to stop a run part way (eligibility's 324 cost minutes more in make check).
    command = suite_command([KERNEL], run_dir, ["upstream"], INTERRUPTED_SELECT)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run_dir / "results.jsonl"
    deadline = time.monotonic() + pace.run_limit(boots=1)  # one boot and five cases: less than the measuring run
    while time.monotonic() < deadline and proc.poll() is None and logged(log) < 5:
        time.sleep(0.5)
    assert proc.poll() is None and logged(log) >= 5, f"{logged(log)} cases recorded within {pace.run_limit(boots=1):.0f} s"
    proc.send_signal(signal.SIGTERM)  # what a CI timeout sends
    assert proc.wait(timeout=pace.run_limit(boots=1)) == 2  # pytest's "interrupted"
    first = json.loads((run_dir / "results.json").read_text())
    done = len(first["cases"])
    grid, others = GRIDS[INTERRUPTED], sum(GRIDS.values()) - GRIDS[INTERRUPTED]
    assert 5 <= done < grid and (run_dir / "matrix.txt").exists()
    assert not qemu_left(run_dir)

    resumed = subprocess.run([*command, "--resume", str(run_dir), "suites/test_collapse.py"], cwd=REPO, capture_output=True, text=True)
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|deselected|failed|error)", resumed.stdout.splitlines()[-1])}
    assert counts.get("passed", 0) + counts.get("skipped", 0) == grid - done, resumed.stdout[-2000:]
    assert counts["deselected"] == done + others and "failed" not in counts and "error" not in counts
    final = json.loads((run_dir / "results.json").read_text())
    assert len(final["cases"]) == grid and {c["verdict"] for c in final["cases"]} <= {"PASS", "SKIP"}
    assert final["run"]["run_id"] == first["run"]["run_id"] and len(final["run"]["resumed"]) == 1


def test_repeat_runs_every_case_n_times(repeated_run: RepeatedRun) -> None:
    status, records, output, run_dir, _ = repeated_run
    assert status == 0, output
    assert sorted(records) == [f"bookworm-anon-madvise-noadvice-noprctl-madvise-nice-rep{i}" for i in (1, 2, 3)]
    header = " ".join((run_dir / "matrix.txt").read_text().split())  # the matrix wraps at 100 columns
    assert "1 pass, 0 skip of 1 upstream case x3 on 1 kernel" in header


def test_kernel_that_does_not_boot_errors_every_case_and_others_go_on(tmp_path: Path, pace: Pace) -> None:
    from vm import kernels
    from vm.cache import default_cache

    good = kernels.resolve(KERNEL, default_cache())
    broken = tmp_path / "boot" / f"vmlinuz-{good.release}"
    broken.parent.mkdir()
    image = bytearray(good.image.read_bytes())
    image[0x10000:] = bytes(len(image) - 0x10000)  # keep the boot header, zero the compressed kernel
    broken.write_bytes(bytes(image))
    (tmp_path / "lib" / "modules").mkdir(parents=True)
    (tmp_path / "lib" / "modules" / good.release).symlink_to(good.image.parent.parent / "lib" / "modules" / good.release)
    run_dir = tmp_path / "run"
    select = "availability or (anon and never and noadvice and noprctl)"
    # The broken kernel sits out the boot timeout on each attempt; the good one must boot within it.
    boot_timeout = pace.boot_timeout()
    command = suite_command([broken, KERNEL], run_dir, ["upstream"], select, options=["--boot-timeout", boot_timeout])
    limit = pace.run_limit(boots=1, waits_s=vng.START_ATTEMPTS * float(boot_timeout))
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=limit)
    cases = json.loads((run_dir / "results.json").read_text())["cases"]
    by_kernel: dict[str, set[str]] = {}
    for case in cases:
        by_kernel.setdefault(case["kernel_info"]["label"], set()).add(case["verdict"])
    assert by_kernel == {good.release: {"ERROR"}, "bookworm": {"PASS"}}, proc.stdout[-3000:]
    errors = [c for c in cases if c["verdict"] == "ERROR"]
    assert len(errors) == 7 and all("did not boot (tried twice)" in c["message"] for c in errors)
    assert {c["class"] for c in errors} == {"infrastructure"}
    assert proc.returncode == 3, "infrastructure errors and no regression: exit 3 (reports.exits.Exit), not 1"
    assert not qemu_left(run_dir)


def probe_guests() -> set[str]:
    """QEMU processes of a KVM probe (vm.accel boots it with 512M: no case VM is that small)."""
    pattern = "qemu-system-x86_64 -name virtme-ng -m 512M"
    return set(subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split())


def test_kvm_probe_leaves_no_guest_behind() -> None:
    """On these hosts the nested-KVM probe guest hangs until the probe's timeout: its QEMU must die
    with it (it used to outlive vng and spin at 75% CPU for the rest of the session)."""
    from vm import accel, kernels
    from vm.cache import default_cache

    kernel = kernels.resolve(KERNEL, default_cache())
    before = probe_guests()
    started = time.monotonic()
    ok, reason = accel.probe_kvm(kernel)
    # A killed QEMU may take a moment to be gone: give it as long as the probe took, measured here.
    deadline = time.monotonic() + (time.monotonic() - started)
    while probe_guests() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (probe_guests() - before), f"probe ({ok}, {reason}) left a guest running"
