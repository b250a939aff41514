"""All virtme-ng knowledge in one place, as virtme-ng keeps all of QEMU's for one architecture in
one class: the command line that boots a kernel, the environment vng needs, how many times a start
is tried, and how a guest's whole process group is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import AnyStr

from vm.kernels import Kernel

# A VM start can fail transiently (seen: one start in seven printed nothing): tried twice.
START_ATTEMPTS = 2
TRIES = {1: "once", 2: "twice"}.get(START_ATTEMPTS, f"{START_ATTEMPTS} times")


def environment() -> dict[str, str]:
    """vng calls its helpers (virtme-run, virtme-configkernel) through PATH: this venv's bin first."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def command(kernel: Kernel, run: str, *, memory: str, accel: str, cpus: int | None = None, rwdir: Path | None = None) -> list[str]:
    """`vng` booting KERNEL and running RUN (a shell command) in it; ACCEL 'tcg' disables KVM.
    A tree kernel is booted from its directory (run vng with cwd=kernel.tree), an image with --run."""
    # --force-9p: Debian 12's qemu ships the C virtiofsd, which vng tries, fails to start as
    # ("fuse: invalid argument") and then falls back to 9p after ~5 s of waiting.
    args = ["vng", "--verbose", "--force-9p", "--memory", memory]
    args += ["--cpus", str(cpus)] if cpus else []
    args += ["--rwdir", str(rwdir)] if rwdir else []
    if accel == "tcg":
        args.append("--disable-kvm")
    # Delay accounting is off by default since 5.14 (e4042ad49235); the allocation test reads it.
    args += ["--append", "delayacct"]
    if kernel.tree is None:
        args += ["--run", str(kernel.image)]
    return [*args, "--exec", run]


def kconfig_command(fragment: Path) -> list[str]:
    """`vng --kconfig` (run in a kernel tree): virtme-ng's minimal config plus FRAGMENT."""
    return ["vng", "--kconfig", "--config", str(fragment)]


def stop_group(proc: subprocess.Popen[AnyStr]) -> None:
    """SIGKILL the guest's whole process group (vng, QEMU, helpers): killing vng alone leaves QEMU
    running. The process must have been started with start_new_session=True."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
