"""All virtme-ng knowledge in one place, as virtme-ng keeps all of QEMU's for one architecture in
one class: the command line that boots a kernel, the environment vng needs, how many times a start
is tried, and how a guest's whole process group is stopped."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import AnyStr

from vm import guestroot
from vm.kernels import Kernel, modules_root

# A VM start can fail transiently (seen: one start in seven printed nothing): tried twice.
START_ATTEMPTS = 2
TRIES = {1: "once", 2: "twice"}.get(START_ATTEMPTS, f"{START_ATTEMPTS} times")


# A guest of another architecture runs on a root of its own (vm/guestroot.py), read-only and without
# the host's paths: the host directories it needs are mounted under /run, a tmpfs its init makes.
GUEST_REPO = "/run/collapse/repo"
GUEST_RESULTS = "/run/collapse/results"
GUEST_PYTHONPATH = "/run/collapse/python"
GUEST_PYCACHE = "/run/collapse/pycache"
GUEST_PYTHON = "python3"  # the root's own (Debian's); the host's cannot run there
# This venv's pure-python packages the agent imports (fixtures/delays.py), shared read-only: the
# guest runs the pinned versions, not Debian's.
SHARED_PACKAGES = ("pyroute2",)


@dataclass(frozen=True)
class GuestView:
    """How the guest reaches the agent: its python, the checkout, the results directory and extra imports."""

    python: str
    repo: str
    results: str
    pythonpath: str | None = None
    pycache: str | None = None  # PYTHONPYCACHEPREFIX; None: write no bytecode (the host's checkout stays clean)


def guest_view(kernel: Kernel, repo: Path, results: Path) -> GuestView:
    """The host's own paths for a guest over the host's root; mount points under /run for a foreign one."""
    if not kernel.foreign:
        return GuestView(sys.executable, str(repo), str(results))
    return GuestView(GUEST_PYTHON, GUEST_REPO, GUEST_RESULTS, GUEST_PYTHONPATH, GUEST_PYCACHE)


def shared_package(name: str) -> Path:
    """The directory of this venv's package NAME."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{name} is not installed in {sys.prefix}; the guest agent needs it")
    return Path(spec.origin).parent


def foreign_options(kernel: Kernel, repo: Path | None, rwdir: Path | None) -> list[str]:
    """vng's options for a guest of another architecture: its --arch and --root, QEMU's CPU, and
    the mounts of the checkout, the results directory, the shared packages and the kernel's modules."""
    assert kernel.root is not None, "kernels.resolve gives a foreign kernel its guest root"
    args = ["--arch", kernel.arch.debian, "--root", str(kernel.root)]
    # --qemu-opts=VALUE: a separate value starting with "-" is taken for an option by argparse.
    args += [f"--qemu-opts={' '.join(kernel.arch.qemu_options)}"] if kernel.arch.qemu_options else []
    args += ["--rodir", f"{GUEST_REPO}={repo}"] if repo else []
    args += ["--rwdir", f"{GUEST_RESULTS}={rwdir}"] if rwdir else []
    if repo:
        pycache = guestroot.pycache(kernel.root, repo)
        pycache.mkdir(parents=True, exist_ok=True)
        args += ["--rwdir", f"{GUEST_PYCACHE}={pycache}"]
    args += [arg for name in SHARED_PACKAGES for arg in ("--rodir", f"{GUEST_PYTHONPATH}/{name}={shared_package(name)}")]
    # A packaged kernel's modules: the root's /usr/lib/modules points at this mount. (A tree boots
    # with what it built in: vng does not prepare a tree's modules for a root of its own.)
    modules = None if kernel.tree else modules_root(kernel.image)
    args += ["--rodir", f"{guestroot.MODULES}={modules}"] if modules else []
    return args


MIB = 1 << 20
# Two nodes farther apart than the kernel's node_reclaim_distance (RECLAIM_DISTANCE, 30): with
# zone_reclaim_mode a block spread over both is not collapsed (rule C19); the THP's node is checked in every case.
NUMA_DISTANCE = 40


def memory_bytes(text: str) -> int:
    """QEMU's size syntax (a number, then K, M or G; MiB without one) in bytes."""
    units = {"k": 1 << 10, "m": MIB, "g": 1 << 30}
    unit = text[-1].lower()
    return int(text[:-1]) * units[unit] if unit in units else int(text) * MIB


def numa_options(kernel: Kernel, memory: str) -> tuple[str, list[str]]:
    """vng's --memory value and options for the architecture's NUMA nodes, MEMORY shared equally (vng
    wants the nodes' sizes to add up to --memory: whole MiB per node); MEMORY as it is for one node."""
    nodes = kernel.arch.numa_nodes
    if nodes < 2:
        return memory, []
    size = memory_bytes(memory) // nodes // MIB
    args = [arg for _ in range(nodes) for arg in ("--numa", f"{size}M")]
    args += [arg for a in range(nodes) for b in range(a + 1, nodes) for arg in ("--numa-distance", f"{a},{b}={NUMA_DISTANCE}")]
    return f"{size * nodes}M", args


def environment() -> dict[str, str]:
    """vng calls its helpers (virtme-run, virtme-configkernel) through PATH: this venv's bin first."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def command(
    kernel: Kernel,
    run: str,
    *,
    memory: str,
    accel: str,
    cpus: int | None = None,
    rwdir: Path | None = None,
    repo: Path | None = None,
) -> list[str]:
    """`vng` booting KERNEL and running RUN (a shell command) in it; ACCEL 'tcg' disables KVM.
    A tree kernel is booted from its directory (run vng with cwd=kernel.tree), an image with --run.
    RWDIR is shared read-write; REPO (the checkout) only needs mounting for a foreign guest, which
    sees both where guest_view says."""
    # --force-9p: Debian 12's qemu ships the C virtiofsd, which vng tries, fails to start as
    # ("fuse: invalid argument") and then falls back to 9p after ~5 s of waiting.
    total, numa = numa_options(kernel, memory)
    args = ["vng", "--verbose", "--force-9p", "--memory", total, *numa]
    args += ["--cpus", str(cpus)] if cpus else []
    if kernel.foreign:
        args += foreign_options(kernel, repo, rwdir)
    elif rwdir:
        args += ["--rwdir", str(rwdir)]
    if accel == "tcg":
        args.append("--disable-kvm")
    # Delay accounting is off by default since 5.14 (e4042ad49235); the allocation test reads it.
    # Modules the guest never needs are not loaded by udev's coldplug (fixtures/arch.py).
    unneeded = kernel.arch.unneeded_modules
    # NUMA balancing would move the cases' pages to the CPU's node behind their back.
    # memfd_secret(2) is off by default before 6.5 (the special grid maps a secret-memory file).
    parameters = ["delayacct", "secretmem.enable=1", *(["numa_balancing=disable"] if numa else []), *kernel.arch.cmdline]
    parameters += [f"modprobe.blacklist={','.join(unneeded)}"] if unneeded else []
    args += ["--append", " ".join(parameters)]
    if kernel.tree is None:
        args += ["--run", str(kernel.image)]
    return [*args, "--exec", run]


def kconfig_command(fragment: Path) -> list[str]:
    """`vng --kconfig` (run in a kernel tree): virtme-ng's minimal config plus FRAGMENT."""
    return ["vng", "--kconfig", "--config", str(fragment)]


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user and system, with reaped children's) used so far by process group PGID:
    a guest's vng, QEMU and helpers, all started with start_new_session=True."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # after "pid (comm)": state ppid pgrp ... utime(11) stime(12) cutime(13) cstime(14)
        if len(fields) > 14 and int(fields[2]) == pgid:
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_group(proc: subprocess.Popen[AnyStr]) -> None:
    """SIGKILL the guest's whole process group (vng, QEMU, helpers): killing vng alone leaves QEMU
    running. The process must have been started with start_new_session=True."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
