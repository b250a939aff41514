"""--kernel values (kernel origins) resolved once per process, under the cache lock; only when a test needs a kernel."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reports.exits import UserError
from suites import rulebook
from suites.plugin.options import assumed_changes, cache_dir, kernel_origins
from vm import accel, debian, kernels
from vm.cache import CacheLock

KERNELS = pytest.StashKey[dict[str, kernels.Kernel]]()


def resolved_kernels(config: pytest.Config) -> dict[str, kernels.Kernel]:
    """Kernel name -> Kernel, in --kernel order; bad input is a usage error (one line, exit 4).
    --collect-only plans from what the cache holds: it never downloads a kernel nor needs QEMU."""
    if KERNELS not in config.stash:
        origins = kernel_origins(config)
        cache = cache_dir(config)
        offline = bool(config.getoption("collectonly"))
        try:
            if not offline:
                accel.require_qemu()
            with CacheLock(cache):
                found = [resolve(origin, cache, offline) for origin in origins]
            for arch in {k.arch.name: k.arch for k in found if not offline}.values():
                accel.require_qemu(arch)
        except UserError as err:
            raise pytest.UsageError(str(err)) from None
        for kernel in found:
            if kernel.config_source is None:
                message = f"--kernel {kernel.origin}: no kernel config found beside it; every CONFIG requirement is assumed met"
                config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
        # Which of the rule book's changes each kernel has, decided once (its git history, Debian
        # changelog, version, or --assume): the rules' bounds read it, and every report shows it.
        book, assumed = rulebook.load(), assumed_changes(config)
        unknown = {label for label in assumed if label is not None} - {k.label for k in found}
        if unknown:
            labels = ", ".join(k.label for k in found)
            raise pytest.UsageError(f"--assume {sorted(unknown)[0]}:...: no kernel of the run has that label; the labels are {labels}")
        found = [
            dataclasses.replace(k, presence=book.presence(k.facts, {**assumed.get(None, {}), **assumed.get(k.label, {})})) for k in found
        ]
        config.stash[KERNELS] = {k.name: k for k in found}
    return config.stash[KERNELS]


def assumed_for(assumed: dict[str | None, dict[str, bool]], label: str) -> dict[str, bool]:
    """The assumptions of the kernel of LABEL: those for every kernel, then its own."""
    return {**assumed.get(None, {}), **assumed.get(label, {})}


def resolve(origin: str, cache: Path, offline: bool) -> kernels.Kernel:
    """One origin; OFFLINE (--collect-only), a Debian kernel not cached yet is one line naming the fix."""
    try:
        return kernels.resolve(origin, cache, offline=offline)
    except debian.NotCached:
        raise UserError(
            f"--collect-only downloads no kernel, and {origin} is not in {cache} yet; "
            f"run once without --collect-only (make matrix KERNELS={origin}), or collect a built tree or vmlinuz"
        ) from None
