"""Command-line options of the suite, checked when parsed (bad input is one line, exit 4), and the
accessors every other module reads them through."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from suites import rulebook
from vm import kernels
from vm.cache import default_cache

SELFTESTS = ("panic", "hang", "splat", "isolation", "noop")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("collapse-conformance")
    group.addoption(
        "--kernel",
        action="append",
        default=[],
        metavar="KERNEL",
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
    group.addoption("--guest-memory", type=memory_size, default="2G", help="guest RAM (default: 2G)")
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
    group.addoption("--repeat", type=positive_int, default=1, metavar="N", help="run every case N times; repeats that disagree are FLAKY")
    group.addoption("--vm-per-case", action="store_true", help="boot a fresh VM for every case (slow; for the benchmark)")
    group.addoption("--boot-timeout", type=float, default=300.0, help="seconds for a VM to boot and start its agent (default: 300)")


def positive_int(text: str) -> int:
    """--repeat: a whole number of at least 1 (0 would run no case and say nothing)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def memory_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def memory_size(text: str) -> str:
    """--guest-memory: QEMU's size syntax, checked here rather than when the first VM boots."""
    if not re.fullmatch(r"[1-9][0-9]*[KMGkmg]?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 2G or 1536M")
    if memory_bytes(text) < 512 << 20:
        raise argparse.ArgumentTypeError(f"{text!r} is below 512M; the guest needs room for 2 MiB THPs and the agent")
    return text


def rule_specs(config: pytest.Config) -> list[str]:
    """The specs to check, in order and without repeats; the first is checked on every case."""
    return list(dict.fromkeys(config.getoption("spec") or rulebook.DEFAULT_SPECS))


def kernel_origins(config: pytest.Config) -> list[str]:
    """The --kernel values (each kernel's origin: debian:SUITE, a tree or a vmlinuz), in order."""
    return config.getoption("kernel") or list(kernels.DEFAULT_KERNELS)


def cache_dir(config: pytest.Config) -> Path:
    return config.getoption("cache_dir") or default_cache()
