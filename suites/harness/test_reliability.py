"""The harness survives the kernel: real runs of the suite, with guests that misbehave on purpose.

Each test runs pytest on the suite itself (a real kernel in a real VM) and reads the verdicts it
recorded in results.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KERNEL = "debian:bookworm"


def run_suite(run_dir: Path, *args: str) -> tuple[int, dict[str, dict[str, object]], str]:
    """Run the suite; return its exit status, its records by case id, and its output."""
    command = [sys.executable, "-m", "pytest", "-p", "no:xdist", "--run-dir", str(run_dir), "--kernel", KERNEL, *args]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    records = {}
    if (run_dir / "results.json").exists():
        records = {str(c["case_id"]): c for c in json.loads((run_dir / "results.json").read_text())["cases"]}
    return proc.returncode, records, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def misbehaving_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, dict[str, object]], str, Path]:
    """One VM panics, a fresh one proves isolation and prints a splat, hangs; a last one does nothing."""
    run_dir = tmp_path_factory.mktemp("selftest") / "run"
    selftests = [arg for action in ("panic", "isolation", "splat", "hang", "noop") for arg in ("--selftest", action)]
    status, records, output = run_suite(run_dir, "suites/test_selftest.py", *selftests, "--case-timeout", "3")
    return status, records, output, run_dir


def verdict(records: dict[str, dict[str, object]], action: str) -> dict[str, object]:
    return records[f"bookworm-{action}"]


def test_every_planned_case_has_a_verdict(misbehaving_run) -> None:  # type: ignore[no-untyped-def]
    status, records, output, _ = misbehaving_run
    assert sorted(records) == sorted(f"bookworm-{a}" for a in ("panic", "isolation", "splat", "hang", "noop")), output
    assert status == 1  # failures and errors make the run fail


def test_panic_is_error_with_the_panic_and_the_run_goes_on(misbehaving_run) -> None:  # type: ignore[no-untyped-def]
    _, records, _, _ = misbehaving_run
    panic = verdict(records, "panic")
    assert panic["verdict"] == "ERROR" and "VM exited" in str(panic["message"])
    assert "Kernel panic - not syncing" in str(panic["console"]), panic["console"]
    assert verdict(records, "isolation")["verdict"] == "PASS"  # on a freshly booted VM


def test_guest_cannot_write_to_the_host(misbehaving_run) -> None:  # type: ignore[no-untyped-def]
    _, records, _, run_dir = misbehaving_run
    isolation = verdict(records, "isolation")
    assert isolation["verdict"] == "PASS", isolation
    assert isolation["raw"] == {"forbidden": "EROFS", "allowed": None}, isolation
    assert not list((REPO / "suites").glob(".isolation-probe-*"))
    assert list(run_dir.glob("guests/*/isolation-probe"))


def test_kernel_splat_fails_the_case(misbehaving_run) -> None:  # type: ignore[no-untyped-def]
    _, records, _, _ = misbehaving_run
    splat = verdict(records, "splat")
    assert splat["verdict"] == "FAIL"
    assert "kernel splat during the case: warning: WARNING: CPU: 0 PID: 1 at mm/khugepaged.c:0" in str(splat["message"])


def test_hang_times_out_as_error_and_the_vm_is_killed(misbehaving_run) -> None:  # type: ignore[no-untyped-def]
    _, records, _, _ = misbehaving_run
    hang = verdict(records, "hang")
    assert hang["verdict"] == "ERROR" and "no answer from the guest agent within 15 s" in str(hang["message"])
    assert verdict(records, "noop")["verdict"] == "PASS"
    leftovers = subprocess.run(["pgrep", "-f", "qemu-system-x86_64 -name virtme-ng"], capture_output=True, text=True).stdout
    assert not leftovers.strip(), f"QEMU left running: {leftovers}"
