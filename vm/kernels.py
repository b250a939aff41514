"""Kernel builds under test: parse a --kernel value (its origin), find image, modules and config, identify the build."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reports.exits import UserError
from reports.kcidb import patchset_hash
from vm import changelog, debian
from vm.changelog import StableUpdate
from vm.presence import KernelFacts, Presence
from vm.version import Version, parse_version

# One kernel per Debian suite that ships a distinct kernel line, the kernels users run: 5.10, 6.1,
# 6.12 before and after the 6.12.113 backports (bookworm-backports, trixie = Debian stable), the
# newest release (trixie-backports) and sid.
DEFAULT_KERNELS = (
    "debian:bullseye",
    "debian:bookworm",
    "debian:bookworm-backports",
    "debian:trixie",
    "debian:trixie-backports",
    "debian:sid",
)
PRERELEASE = re.compile(r"[-~]rc\d")


@dataclass(frozen=True)
class Kernel:
    origin: str  # the --kernel value, as given on the command line: debian:SUITE, a tree or a vmlinuz
    label: str  # short column name: the Debian suite, or the release
    release: str  # uname -r
    version: Version  # upstream version the rules are keyed on
    build_id: str  # first 12 hex digits of the image's sha256
    image: Path
    tree: Path | None  # a built kernel tree: vng runs from there and uses its modules
    config: dict[str, str] = field(compare=False, repr=False)
    banner: str = field(compare=False, default="")
    config_source: str | None = field(compare=False, default=None)  # None: no config was found
    git: dict[str, object] | None = field(compare=False, default=None)  # a tree's provenance (tree_provenance)
    # A Debian package's upstream stable updates, from its changelog (None: not a Debian package).
    stable_updates: tuple[StableUpdate, ...] | None = field(compare=False, default=None, repr=False)
    changelog: str = field(compare=False, default="")  # where stable_updates were read
    # The rule book's changes this kernel has or lacks, and how that was decided (suites fill it in).
    presence: Mapping[str, Presence] = field(compare=False, default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """Unique column id: label plus build id (vng accepts only [a-zA-Z0-9_+ /.-] in paths)."""
        return f"{self.label}-{self.build_id}"

    def has(self, option: str) -> bool:
        return self.config.get(option) in ("y", "m")

    @property
    def facts(self) -> KernelFacts:
        """What deciding a change's presence reads of this kernel."""
        prerelease = bool(PRERELEASE.search(f"{self.release} {self.banner}"))
        return KernelFacts(self.version, prerelease, self.tree, self.stable_updates, self.changelog)

    def describe(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "label": self.label,
            "release": self.release,
            "version": ".".join(map(str, self.version)),
            "build_id": self.build_id,
            "image": str(self.image),
            "banner": self.banner,
            "config": self.config_source or "unknown: no config found; every CONFIG requirement is assumed met",
            **({"git": self.git} if self.git else {}),
            **({"changelog": self.changelog} if self.changelog else {}),
            "changes": {key: presence.describe() for key, presence in sorted(self.presence.items())},
        }


def _git(tree: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def tree_provenance(tree: Path) -> dict[str, object] | None:
    """Where a tree kernel came from: commit, `git describe`, dirty flag, remote URL, and the sha256
    of the uncommitted changes as KCIDB's patchset_hash. None outside a git checkout."""
    commit = _git(tree, "rev-parse", "HEAD")
    if commit is None:
        return None
    changes = _git(tree, "diff", "HEAD", "--no-ext-diff") or ""
    remote = _git(tree, "config", "--get", "remote.origin.url") or next(iter((_git(tree, "remote") or "").split()), None)
    if remote and not remote.startswith(("http", "git", "ssh", "/")):
        remote = _git(tree, "remote", "get-url", remote)
    return {
        "commit": commit,
        "describe": _git(tree, "describe", "--always", "--tags", "--abbrev=12"),
        "dirty": bool(changes),
        "remote": remote,
        **({"patchset_hash": patchset_hash([changes])} if changes else {}),
    }


def image_banner(image: Path) -> str:
    """The version string of an x86 bzImage, from its boot-protocol header."""
    try:
        with image.open("rb") as f:
            head = f.read(0x10000)
    except OSError as err:
        raise UserError(f"cannot read kernel image {image}: {err.strerror}") from err
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        raise UserError(f"{image} is not an x86 kernel image (no bzImage header); pass a bzImage or vmlinuz")
    (offset,) = struct.unpack_from("<H", head, 0x20E)
    raw = head[offset + 0x200 : offset + 0x200 + 256]
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def upstream_version(release: str, banner: str) -> Version:
    """Debian's release names hide the stable version (6.1.0-56 is 6.1.192): prefer the banner's."""
    debian_version = re.search(r"Debian (\d+\.\d+(?:\.\d+)?)", banner)
    return parse_version(debian_version[1] if debian_version else release)


def parse_config(text: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            config[key.removeprefix("CONFIG_")] = value.strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[9:-11]] = "n"
    return config


def build_id(image: Path) -> str:
    return debian.sha256(image)[:12]


def _identify(image: Path, config_file: Path | None, cache: Path) -> tuple[str, str, dict[str, str]]:
    """(banner, build id, config) of an image, memoized in the cache by path, size and mtime:
    every xdist worker resolves the same kernels, and none should hash or parse them again."""
    parts = [image.resolve(), *([config_file] if config_file and config_file.exists() else [])]
    key = hashlib.sha256(repr([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in parts]).encode()).hexdigest()[:24]
    memo = cache / "identity" / f"{key}.json"
    if memo.exists():
        known = json.loads(memo.read_text())
        return known["banner"], known["build_id"], known["config"]
    banner = image_banner(image)
    config = parse_config(config_file.read_text()) if len(parts) == 2 and config_file else {}
    found = (banner, build_id(image), config)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"banner": found[0], "build_id": found[1], "config": found[2]}))
    tmp.replace(memo)
    return found


def _from_image(
    origin: str, image: Path, label: str | None, tree: Path | None, config_file: Path | None, cache: Path, package: Path | None = None
) -> Kernel:
    """PACKAGE: the root of the extracted Debian package tree the image came in, if any."""
    banner, image_id, config = _identify(image, config_file, cache)
    release = banner.split(" ", 1)[0]
    version = upstream_version(release, banner)
    found = changelog.find(package, release, version) if package else None
    return Kernel(
        stable_updates=tuple(found[1]) if found else None,
        changelog=str(found[0]) if found else "",
        config_source=str(config_file) if config and config_file else None,
        git=tree_provenance(tree) if tree else None,
        origin=origin,
        label=label or release,
        release=release,
        version=version,
        build_id=image_id,
        image=image,
        tree=tree,
        config=config,
        banner=banner,
    )


def _modules_root(image: Path) -> Path | None:
    """The lib/modules or usr/lib/modules directory above an image, as vng -r looks for it."""
    for parent in image.resolve().parents:
        for candidate in (parent / "lib" / "modules", parent / "usr" / "lib" / "modules"):
            if candidate.is_dir():
                return candidate
    return None


def _image_in_root(root: Path) -> tuple[Path, Path | None]:
    """vmlinuz and config inside an extracted Debian package root (split or classic layout)."""
    for image in sorted(root.glob("boot/vmlinuz-*")) + sorted(root.glob("usr/lib/modules/*/vmlinuz")):
        release = image.name.removeprefix("vmlinuz-") if image.name != "vmlinuz" else image.parent.name
        for config in (root / "boot" / f"config-{release}", root / "usr/lib/modules" / release / "config"):
            if config.exists():
                return image, config
        return image, None
    raise UserError(f"no vmlinuz in {root}; delete that cache entry and run again")


def resolve(origin: str, cache: Path, offline: bool = False) -> Kernel:
    """Turn one --kernel ORIGIN into a Kernel, downloading Debian packages when needed."""
    if not origin.strip():
        raise UserError("--kernel needs a value: debian:SUITE, a built kernel tree or a vmlinuz")
    if origin.startswith("debian:"):
        suite = origin.split(":", 1)[1]
        entry = debian.resolve(cache, suite, offline=offline)
        image, config = _image_in_root(Path(entry.root))
        return _from_image(origin, image, suite, None, config, cache, Path(entry.root))
    path = Path(origin).expanduser()
    if not path.exists():
        raise UserError(f"--kernel {origin}: no such file or directory; pass debian:SUITE, a kernel tree or a vmlinuz")
    if path.is_dir():
        image = path / "arch" / "x86" / "boot" / "bzImage"
        if not image.exists() or not (path / "modules.order").exists():
            raise UserError(
                f"--kernel {origin}: not a built kernel tree (needs arch/x86/boot/bzImage and modules.order); run make there first"
            )
        return _from_image(origin, image, None, path.resolve(), path / ".config", cache)
    release = image_banner(path).split(" ", 1)[0]
    modules = _modules_root(path)
    if modules is None:
        raise UserError(f"--kernel {origin}: no lib/modules or usr/lib/modules directory above the image; put its modules there")
    candidates = [path.parent / f"config-{release}", path.parent / "config", modules / release / "config"]
    config = next((c for c in candidates if c.exists()), None)
    # A vmlinuz of an extracted Debian package: the package root holds lib/modules (or usr/lib/modules).
    usr_merged = modules.parent.name == "lib" and modules.parent.parent.name == "usr"
    package = modules.parent.parent.parent if usr_merged else modules.parent.parent
    return _from_image(origin, path.resolve(), None, None, config, cache, package)
