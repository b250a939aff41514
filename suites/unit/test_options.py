"""The suite's options as a newcomer meets them, through pytest itself (a child process, collection
only, no VM): ranges and --cache-dir checked when parsed, --collect-only that never downloads,
--rule, and the hint when -k names a rule id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.exits import Exit
from suites.plugin.run import rule_hint
from suites.unit.test_kernels import BANNER, fake_bzimage

REPO = Path(__file__).resolve().parents[2]


def collect(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLLAPSE_CACHE"}
    command = [sys.executable, "-m", "pytest", "suites/test_collapse.py", "--collect-only", "-q", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def cached_bookworm(tmp_path: Path) -> Path:
    """A cache holding debian:bookworm as vm.debian leaves it (record, extracted root), stale on purpose."""
    cache = tmp_path / "cache"
    root = cache / "kernels" / "debian" / "6.1.0-56-amd64_6.1.192-2"
    (root / "boot").mkdir(parents=True)
    fake_bzimage(root / "boot" / "vmlinuz-6.1.0-56-amd64", BANNER)
    (root / "boot" / "config-6.1.0-56-amd64").write_text("CONFIG_TRANSPARENT_HUGEPAGE=y\nCONFIG_SHMEM=y\n")
    (root / ".complete").write_text("")
    record = {"suite": "bookworm", "meta_version": "6.1.192-2", "packages": [], "root": str(root)}
    (cache / "debian").mkdir()
    (cache / "debian" / "bookworm.json").write_text(json.dumps(record))
    return cache


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--guest-cpus", "0"], "--guest-cpus 0: must be a finite number >= 1"),
        (["--case-timeout", "-1"], "--case-timeout -1: must be a finite number > 0"),
        (["--boot-timeout", "0"], "--boot-timeout 0: must be a finite number > 0"),
        (["--boot-timeout", "inf"], "--boot-timeout inf: must be a finite number > 0"),
        (["--rule", "Z9"], "--rule Z9: no rule of the rule book has that id"),
    ],
)
def test_out_of_range_values_are_one_line_usage_errors(args: list[str], says: str, tmp_path: Path) -> None:
    proc = collect("--kernel", str(tmp_path / "never-resolved"), *args)  # checked before any kernel is looked at
    assert proc.returncode == Exit.USAGE
    assert proc.stderr.strip() == f"ERROR: {says}" or proc.stderr.strip().startswith(f"ERROR: {says}")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_cache_dir_whose_parent_is_missing_is_refused_not_made(tmp_path: Path) -> None:
    wanted = tmp_path / "no" / "such" / "cache"
    proc = collect("--kernel", "debian:bookworm", "--cache-dir", str(wanted))
    assert proc.returncode == Exit.USAGE and len(proc.stderr.strip().splitlines()) == 1
    assert f"{tmp_path / 'no' / 'such'} does not exist" in proc.stderr
    assert not (tmp_path / "no").exists()


def test_collect_only_never_downloads_a_kernel(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = collect("--kernel", "debian:bookworm", "--cache-dir", str(cache))
    assert proc.returncode == Exit.USAGE and len(proc.stderr.strip().splitlines()) == 1
    assert "--collect-only downloads no kernel, and debian:bookworm is not in" in proc.stderr
    assert not (cache / "apt").exists() and not (cache / "debs").exists()  # no apt-get update, no .deb


def test_collect_only_plans_from_a_cached_kernel_even_a_stale_one(cached_bookworm: Path) -> None:
    proc = collect("--kernel", "debian:bookworm", "--cache-dir", str(cached_bookworm))
    assert proc.returncode == Exit.CLEAN, proc.stdout + proc.stderr
    assert "test_ranges[bookworm-" in proc.stdout
    assert not (cached_bookworm / "apt").exists()


def test_rule_selects_the_cases_that_rule_decides(cached_bookworm: Path) -> None:
    proc = collect("--kernel", "debian:bookworm", "--cache-dir", str(cached_bookworm), "--rule", "B4.inside", "--rule", "C8")
    assert proc.returncode == Exit.CLEAN, proc.stdout + proc.stderr
    chosen = [line for line in proc.stdout.splitlines() if "::" in line]
    assert chosen and any("inside-one-block" in line for line in chosen)
    from suites import rulebook

    tests = {f"test_{r.test}[" for r in rulebook.load().rules if r.id == "B4.inside" or r.id.split(".")[0] == "C8"}
    assert all(any(t in line for t in tests) for line in chosen), chosen
    assert len(chosen) < len(collect("--kernel", "debian:bookworm", "--cache-dir", str(cached_bookworm)).stdout.splitlines())


def test_a_k_that_names_a_rule_id_gets_a_hint(cached_bookworm: Path) -> None:
    proc = collect("--kernel", "debian:bookworm", "--cache-dir", str(cached_bookworm), "-k", "C8")
    assert proc.returncode == Exit.NO_CASES
    assert "hint: -k matches test ids, and rule ids are not in them: select by rule with --rule C8" in proc.stdout


def test_the_hint_needs_a_rule_id() -> None:
    assert rule_hint("ranges and inside") is None
    hint = rule_hint("B4.inside or not C8")
    assert hint == "-k matches test ids, and rule ids are not in them: select by rule with --rule B4.inside --rule C8"


def test_a_guest_slowed_by_other_work_is_not_out_of_time() -> None:
    from vm.machine import out_of_time

    assert not out_of_time(300, 299, 299)  # never before the limit in wall time
    assert out_of_time(300, 300, 300)  # hung busy on an idle machine: at the limit, as always
    assert out_of_time(300, 301, 10)  # idle: hung on nothing
    assert not out_of_time(300, 600, 200)  # a third of a CPU on a loaded machine: still booting
    assert out_of_time(300, 900, 300)  # ... until it has used its limit in CPU time
    assert out_of_time(300, 1300, 320)  # under a quarter of a CPU on average is idle


def test_group_cpu_s_counts_a_process_group() -> None:
    import subprocess
    import sys

    from vm import vng

    code = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ninput()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, start_new_session=True)
    try:
        while vng.group_cpu_s(proc.pid) < 0.2:  # it spins 0.3 s of CPU, then waits: the count gets past 0.2
            pass
    finally:
        vng.stop_group(proc)
    assert vng.group_cpu_s(proc.pid) == 0.0  # gone: nothing left in the group


def test_a_stalled_kernel_is_recognised_by_its_own_report() -> None:
    from vm.machine import CRASH_START, STALL

    seen = "[  155.044206] rcu: INFO: rcu_preempt self-detected stall on CPU"  # mutant 34's guest, 2026-12-02
    for line in (
        seen,
        "[ 30.1] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
        "[ 44.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
    ):
        assert STALL.search(line) and CRASH_START.search(line), line
    assert not STALL.search("[ 0.22] rcu: RCU calculated value of scheduler-enlistment delay is 100 jiffies.")
