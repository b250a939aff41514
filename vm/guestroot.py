"""The guest's root filesystem for a kernel of another architecture than the host's.

A guest of the host's architecture runs over the host's own root (vng's default). A foreign one
cannot run the host's binaries, so it gets a small Debian root of its own architecture: the packages
below and their dependencies, from the same signed archive indexes as the kernels (vm/debian.py),
unpacked with dpkg-deb -x (no maintainer scripts: nothing of the guest architecture runs on the
host), made once per architecture and kept in the cache like a kernel.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from fixtures.arch import Arch
from reports.exits import UserError
from vm import debian

# Debian stable: the same python3 minor as sid (3.13), and a root that does not change every day.
SUITE = "trixie"
# What vng's guest side needs (virtme-init is a bash script: mount, grep, sed, setsid, su, find; its
# initramfs needs a static busybox), kmod for the kernel's modules, and the agent's python3 and the
# tools the fixtures run (mount, modprobe, mkfs.ext4: the ext4 grid's ramdisk, fixtures/memory.py).
# Dependencies come with them. Not udev: see UDEVD.
PACKAGES = (
    "base-files",
    "base-passwd",
    "bash",
    "dash",  # /bin/sh, which vng's init command line runs
    "coreutils",
    "util-linux",
    "mount",
    "grep",
    "sed",
    "findutils",
    "hostname",
    "kmod",
    "busybox-static",
    "python3",
    "e2fsprogs",
)
# virtme-init powers off with `poweroff -f`, which comes with systemd-sysv here: busybox's does the same.
BUSYBOX_APPLETS = ("poweroff",)
# Where the kernel's modules appear in the guest (vng.py mounts them there): the root's
# /usr/lib/modules points there, so one root serves every kernel of its architecture.
MODULES = "/run/collapse/modules"
# virtme-init starts udevd, triggers a coldplug and waits for it to settle, and runs the script over
# the virtio ports udev names /dev/virtio-ports/NAME. Under TCG on arm64 that coldplug took 130 s of
# a 200 s boot (measured: 70 s trigger, 60 s settle), loading drivers no case uses. This udevd names
# the ports and stops; udevadm does nothing. Modules the kernel asks for later still load (kmod).
UDEVD = """#!/bin/sh
# collapse-conformance (vm/guestroot.py): all vng's script needs of udev is the virtio port names.
mkdir -p /dev/virtio-ports
for port in /sys/class/virtio-ports/*; do
    [ -r "$port/name" ] && ln -sf "../${port##*/}" "/dev/virtio-ports/$(cat "$port/name")"
done
exit 0
"""
UDEVADM = "#!/bin/sh\n# collapse-conformance (vm/guestroot.py): no udev runs here, so nothing to trigger or wait for.\nexit 0\n"
INSTALL = re.compile(r"^Inst (\S+) \((\S+) ", re.M)


@dataclass(frozen=True)
class GuestRoot:
    suite: str
    arch: str  # Debian's architecture name
    wanted: tuple[str, ...]  # PACKAGES when it was made: a root made for another list is made again
    packages: tuple[str, ...]  # "name=version", the wanted ones and their dependencies
    root: str  # the extracted tree

    @property
    def path(self) -> Path:
        return Path(self.root)


def record_path(cache: Path, arch: Arch) -> Path:
    return cache / "roots" / f"debian-{SUITE}-{arch.debian}.json"


def resolve(cache: Path, arch: Arch, offline: bool = False) -> GuestRoot:
    """ARCH's guest root, made on first use and then kept: it holds tools, not the kernel under test,
    so it is not refreshed when the archive moves on (delete its record to make it again)."""
    record = record_path(cache, arch)
    if record.exists():
        known = json.loads(record.read_text())
        found = GuestRoot(**{**known, "wanted": tuple(known.get("wanted", ())), "packages": tuple(known["packages"])})
        if found.wanted == PACKAGES and (found.path / ".complete").exists():
            return found
    if offline:
        raise debian.NotCached(f"the {arch.name} guest root is not in the cache; run once with network access")
    apt = debian.PrivateApt(cache, SUITE, arch)
    if not apt.fresh():
        apt.update()
    chosen = dependencies(apt.run("apt-get", "install", "-s", "-q", "--no-install-recommends", *PACKAGES))
    # One apt-cache call for all: each call reads the whole index (a second or more under load).
    fields = stanzas(apt.run("apt-cache", "show", "--no-all-versions", *(f"{name}={version}" for name, version in chosen)))
    debs = [debian.fetch_deb(apt, cache, f) for f in fields]
    # One entry per package set: a new set is a new directory, never an edit of a root in use.
    digest = hashlib.sha256("\n".join(sorted(f"{n}={v}" for n, v in chosen)).encode()).hexdigest()[:16]
    root = cache / "roots" / f"debian-{SUITE}-{arch.debian}-{digest}"
    if not (root / ".complete").exists():
        _build(debs, root)
    found = GuestRoot(suite=SUITE, arch=arch.debian, wanted=PACKAGES, packages=tuple(f"{n}={v}" for n, v in chosen), root=str(root))
    record.parent.mkdir(parents=True, exist_ok=True)
    debian._atomic_write(record, json.dumps(asdict(found), indent=1))
    return found


def pycache(root: Path, repo: Path) -> Path:
    """Where guests on ROOT running checkout REPO keep their bytecode, between boots (PYTHONPYCACHEPREFIX).
    Under TCG on arm64, importing the agent took 98 s compiling every module, 30 s from bytecode;
    dpkg-deb -x leaves the root without any (py3compile runs in a maintainer script), and the host's
    python cannot write another version's. Per checkout: every checkout is mounted at the same guest
    path, and bytecode is checked by its source's mtime and size only."""
    key = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:12]
    return root.parent / f"{root.name}.pycache" / key


def dependencies(simulation: str) -> list[tuple[str, str]]:
    """(package, version) of every package `apt-get install -s` would install, in its order."""
    chosen = INSTALL.findall(simulation)
    if not chosen:
        raise UserError(f"apt chose no packages for the guest root from {SUITE}; is its index empty?")
    return chosen


def stanzas(text: str) -> list[dict[str, str]]:
    """Every stanza of a Debian control text (apt-cache show of several packages)."""
    return [debian.parse_control(block) for block in re.split(r"\n\s*\n", text) if block.strip()]


def _build(debs: list[Path], root: Path) -> None:
    """Unpack into a temporary directory, finish it, then rename: never a half-made root."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".partial-") as tmp:
        staging = Path(tmp) / "root"
        for deb in debs:
            debian._run_or_explain(["dpkg-deb", "-x", str(deb), str(staging)], root.parent)
        finish(staging)
        (staging / ".complete").write_text("\n".join(deb.name for deb in debs) + "\n")
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)


def finish(root: Path) -> None:
    """What maintainer scripts and an installer would have made: the usr-merge links, the account
    files, an fstab for vng to bind over, the modules link, the udev stand-ins and the applets
    nothing else provides."""
    for name in ("bin", "sbin", "lib"):
        link = root / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(f"usr/{name}")
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    for name in ("passwd", "group"):
        if not (etc / name).exists():
            shutil.copy(root / "usr/share/base-passwd" / f"{name}.master", etc / name)
    (etc / "fstab").touch()
    (etc / "hostname").write_text("collapse-guest\n")
    modules = root / "usr/lib/modules"
    if modules.is_dir() and not modules.is_symlink():
        shutil.rmtree(modules)
    modules.symlink_to(MODULES)
    for name, text in (("usr/sbin/udevd", UDEVD), ("usr/bin/udevadm", UDEVADM)):
        (root / name).write_text(text)
        os.chmod(root / name, 0o755)
    for applet in BUSYBOX_APPLETS:
        target = root / "usr/sbin" / applet
        if not target.exists() and not target.is_symlink():
            target.symlink_to("../bin/busybox")
    for directory in ("proc", "sys", "dev", "run", "tmp", "root", "var/tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
