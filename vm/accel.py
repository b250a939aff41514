"""Choose the accelerator: KVM only if a guest really boots with it, else TCG. Cached per host."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from fixtures.arch import Arch, current
from reports.exits import UserError
from vm import vng
from vm.kernels import Kernel

PROBE_TIMEOUT_S = 60.0
PROBE_MARK = "collapse-kvm-probe-ok"


def require_qemu(arch: Arch | None = None) -> str:
    """The QEMU that runs ARCH's guests (default: the host's architecture), or one line naming its package."""
    arch = arch or current()
    qemu = shutil.which(arch.qemu)
    if qemu is None:
        raise UserError(f"{arch.qemu} not found; install it with: apt-get install {arch.qemu_package} (or run make check)")
    return qemu


def host_fingerprint() -> str:
    """What decides whether nested KVM works: host kernel, QEMU build and CPU model."""
    qemu = require_qemu()
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        "unknown",
    )
    return f"{platform.release()} | {version} | {cpu}"


def probe_kvm(kernel: Kernel) -> tuple[bool, str]:
    """Boot KERNEL under KVM once. Nested KVM here aborts on MSR 0x10a or hangs after 'Probing EDD'."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible"
    command = vng.command(kernel, f"echo {PROBE_MARK}", memory="512M", accel="kvm")
    proc = subprocess.Popen(
        command,
        cwd=kernel.tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=vng.environment(),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        stdout, stderr = proc.communicate(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # The whole group: killing vng alone left its QEMU running (seen: a hung probe guest at 75% CPU).
        vng.stop_group(proc)
        proc.communicate()
        return False, f"a KVM guest did not finish booting within {PROBE_TIMEOUT_S:.0f} s"
    if PROBE_MARK in stdout:
        return True, "a KVM guest booted"
    last = (stderr.strip().splitlines() or ["no output"])[-1]
    return False, f"a KVM guest failed to boot: {last}"


def choose(requested: str, kernel: Kernel, cache: Path) -> tuple[str, str]:
    """(accelerator, reason). REQUESTED is auto, kvm or tcg; auto probes once per host fingerprint."""
    if requested in ("kvm", "tcg"):
        return requested, "requested with --accel"
    if kernel.foreign:  # KVM runs the host's architecture only: nothing to probe, and nothing to record
        return "tcg", f"a {kernel.arch.name} kernel on a {current().name} host is emulated (TCG)"
    record = cache / "accel.json"
    fingerprint = host_fingerprint()
    known = json.loads(record.read_text()) if record.exists() else {}
    if fingerprint not in known:
        ok, reason = probe_kvm(kernel)
        known[fingerprint] = {"accel": "kvm" if ok else "tcg", "reason": reason}
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(record)
    entry = known[fingerprint]
    return entry["accel"], f"{entry['reason']} (probed once for this host; delete {record} to probe again)"
