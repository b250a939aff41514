"""Command-line options of the suite, checked when parsed (bad input is one line, exit 4), and the
accessors every other module reads them through."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from suites import rulebook
from vm import kernels
from vm.cache import cache_problem, default_cache
from vm.vng import memory_bytes

SELFTESTS = ("panic", "hang", "splat", "isolation", "noop")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("collapse-conformance")
    group.addoption(
        "--kernel",
        action="append",
        default=[],
        metavar="KERNEL",
        help="debian:SUITE[/FLAVOUR] (e.g. debian:sid/arm64-16k), a built kernel tree, or a vmlinuz; repeatable"
        f" (default: {' '.join(kernels.DEFAULT_KERNELS)})",
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
        "--cache-dir",
        type=Path,
        default=None,
        help="kernels and apt state; its parent must exist (default: $COLLAPSE_CACHE or ~/.cache/collapse-conformance)",
    )
    group.addoption(
        "--rule",
        action="append",
        default=[],
        metavar="RULE",
        help="only the cases that rule decides, repeatable; C8 takes C8 and C8.none (rule ids: docs/rules.md)",
    )
    group.addoption(
        "--assume",
        action="append",
        default=[],
        metavar="[LABEL:]CHANGE=present|absent",
        help="a vendor kernel patched outside stable: decide that change so for the kernel of LABEL (without it: every "
        "kernel), over its git history, Debian changelog and version; repeatable, shown in every report (changes: docs/rules.md)",
    )
    group.addoption("--run-dir", type=Path, default=None, help="where results go (default: reports/out/RUN_ID)")
    group.addoption("--accel", choices=("auto", "kvm", "tcg"), default="auto", help="VM accelerator (default: auto, probed once per host)")
    group.addoption("--guest-memory", type=memory_size, default="2G", help="guest RAM (default: 2G)")
    group.addoption("--guest-cpus", type=int, default=None, help="vCPUs per VM, at least 1 (default: host cores / xdist workers)")
    group.addoption("--case-timeout", type=float, default=60.0, help="seconds per case under KVM, x5 under TCG; > 0 (default: 60)")
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
    group.addoption("--boot-timeout", type=float, default=300.0, help="seconds for a VM to boot and start its agent; > 0 (default: 300)")


@dataclass(frozen=True)
class Bound:
    """A numeric option's range, checked when the options are parsed (argparse's type= checks only the syntax)."""

    option: str  # as typed, --guest-cpus
    least: float
    strict: bool  # least itself is refused (a timeout of 0 s)

    def problem(self, value: float | None) -> str | None:
        if value is None:
            return None
        low = value <= self.least if self.strict else value < self.least
        if low or not math.isfinite(value):
            bound = f"> {self.least:g}" if self.strict else f">= {self.least:g}"
            return f"{self.option} {value:g}: must be a finite number {bound}"
        return None


BOUNDS = (Bound("--guest-cpus", 1, strict=False), Bound("--case-timeout", 0, strict=True), Bound("--boot-timeout", 0, strict=True))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Values argparse's type= cannot judge stop the run here, in one line (exit 4), before any kernel
    is resolved or downloaded (pytest prints type= errors with its usage, over four lines)."""
    problems = [bound.problem(config.getoption(bound.option.removeprefix("--").replace("-", "_"))) for bound in BOUNDS]
    cache = config.getoption("cache_dir")
    problems.append(cache_problem(cache) if cache is not None else None)
    unknown = "no rule of the rule book has that id; docs/rules.md lists them"
    problems += [f"--rule {name}: {unknown}" for name in unknown_rules(config)]
    problems += [assumption_problem(text) for text in config.getoption("assume")]
    first = next((p for p in problems if p), None)
    if first:
        raise pytest.UsageError(first)


ASSUMED_WORDS = {"present": True, "absent": False}


def assumption_problem(text: str) -> str | None:
    _, key, word = split_assumption(text)
    changes = rulebook.load().changes
    if key not in changes:
        return f"--assume {text}: no [change.{key}] in the rule book; the changes are: {', '.join(changes)}"
    if word not in ASSUMED_WORDS:
        return f"--assume {text}: say {key}=present or {key}=absent"
    return None


def split_assumption(text: str) -> tuple[str | None, str, str]:
    """'trixie:shmem-forced-collapse=present' -> ('trixie', 'shmem-forced-collapse', 'present')."""
    target, _, word = text.partition("=")
    label, _, key = target.rpartition(":")
    return label or None, key, word


def assumed_changes(config: pytest.Config) -> dict[str | None, dict[str, bool]]:
    """--assume [LABEL:]CHANGE=present|absent, checked in pytest_configure: kernel label (None: every
    kernel) -> change key -> present."""
    found: dict[str | None, dict[str, bool]] = {}
    for label, key, word in map(split_assumption, config.getoption("assume")):
        found.setdefault(label, {})[key] = ASSUMED_WORDS[word]
    return found


def unknown_rules(config: pytest.Config) -> list[str]:
    return [name for name in config.getoption("rule") if not rules_named(name)]


def rules_named(name: str) -> set[str]:
    """The rule ids NAME stands for: itself, and those it is the stem of (C8: C8, C8.none)."""
    return {r.id for r in rulebook.load().rules if r.id == name or r.id.startswith(f"{name}.")}


def positive_int(text: str) -> int:
    """--repeat: a whole number of at least 1 (0 would run no case and say nothing)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


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
