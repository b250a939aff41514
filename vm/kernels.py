"""Kernel builds under test: parse a --kernel value (its origin), find image, modules and config, identify the build."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fixtures.arch import ARCHES, Arch, current, named, of_config, page_size
from reports.exits import UserError
from reports.kcidb import patchset_hash
from vm import changelog, debian, guestroot
from vm import image as boot_image
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
DEBIAN = "debian:"
DEFAULT_PAGE_SIZE = 4096


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
    arch: Arch = field(compare=False, default_factory=current, repr=False)  # from the image's header or the tree's config
    flavour: str | None = field(compare=False, default=None)  # a Debian kernel's image flavour (linux-image-FLAVOUR)
    # The base page size the image header or config declares; the guest's own is recorded at boot.
    page_size: int = field(compare=False, default=4096)
    root: Path | None = field(compare=False, default=None)  # the guest root of a foreign kernel (vm/guestroot.py)

    @property
    def foreign(self) -> bool:
        """Not of the host's architecture: TCG, and a guest root of its own."""
        return self.arch != current()

    @property
    def pmd_size(self) -> int:
        """The PMD (THP) size its page size implies: one page-table page of 8-byte entries, each a page."""
        return self.page_size * (self.page_size // 8)

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
            "arch": self.arch.name,
            "page_size": self.page_size,
            **({"flavour": self.flavour} if self.flavour else {}),
            **({"guest_root": str(self.root)} if self.root else {}),
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


@dataclass(frozen=True)
class Identity:
    """What an image and its config say, once: banner, build id, config, architecture, page size."""

    banner: str
    build_id: str
    config: dict[str, str]
    arch: str  # Arch.name
    page_size: int


def _identify(image_path: Path, config_file: Path | None, cache: Path) -> Identity:
    """IMAGE_PATH's identity, memoized in the cache by path, size and mtime: every xdist worker
    resolves the same kernels, and none should hash, unpack or parse them again."""
    parts = [image_path.resolve(), *([config_file] if config_file and config_file.exists() else [])]
    key = hashlib.sha256(repr([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in parts]).encode()).hexdigest()[:24]
    memo = cache / "identity" / f"{key}.json"
    if memo.exists():
        known = json.loads(memo.read_text())
        if "arch" in known:  # memos written before architectures were told apart are made again
            return Identity(**known)
    facts = boot_image.identify(image_path, cache)
    config = parse_config(config_file.read_text()) if len(parts) == 2 and config_file else {}
    found = Identity(facts.banner, build_id(image_path), config, facts.arch.name, facts.page_size or page_size(facts.arch, config))
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(found)))
    tmp.replace(memo)
    return found


def _from_image(
    origin: str,
    image_path: Path,
    label: str | None,
    tree: Path | None,
    config_file: Path | None,
    cache: Path,
    package: Path | None = None,
    flavour: str | None = None,
) -> Kernel:
    """PACKAGE: the root of the extracted Debian package tree the image came in, if any."""
    identity = _identify(image_path, config_file, cache)
    banner, image_id, config = identity.banner, identity.build_id, identity.config
    release = banner.split(" ", 1)[0]
    version = upstream_version(release, banner)
    found = changelog.find(package, release, version) if package else None
    return Kernel(
        stable_updates=tuple(found[1]) if found else None,
        changelog=str(found[0]) if found else "",
        config_source=str(config_file) if config and config_file else None,
        git=tree_provenance(tree) if tree else None,
        origin=origin,
        label=label or release_label(release, named(identity.arch), identity.page_size),
        release=release,
        version=version,
        build_id=image_id,
        image=image_path,
        tree=tree,
        config=config,
        banner=banner,
        arch=named(identity.arch),
        flavour=flavour,
        page_size=identity.page_size,
    )


def modules_root(image: Path) -> Path | None:
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


def parse_debian(origin: str) -> tuple[str, str | None]:
    """(suite, flavour) of debian:SUITE or debian:SUITE/FLAVOUR (None: the host's default flavour)."""
    suite, slash, flavour = origin.removeprefix(DEBIAN).partition("/")
    if not suite or (slash and not flavour) or "/" in flavour:
        raise UserError(f"--kernel {origin}: write debian:SUITE or debian:SUITE/FLAVOUR, e.g. debian:sid/arm64-16k")
    return suite, flavour or None


def debian_label(suite: str, flavour: str | None) -> str:
    """A Debian kernel's column name: the suite, and the flavour when one was asked for (sid-arm64-16k)."""
    return f"{suite}-{flavour}" if flavour else suite


def release_label(release: str, arch: Arch, page: int) -> str:
    """A tree's or vmlinuz's column name: its release, plus its architecture and page size when they
    are not the host's and 4K (6.12.95-arm64-16k), unless the release ends so (Debian's do: 7.2.13+deb14-arm64-16k)."""
    suffix = f"-{arch.name}" + (f"-{page // 1024}k" if page != DEFAULT_PAGE_SIZE else "")
    if (arch == current() and page == DEFAULT_PAGE_SIZE) or release.endswith(suffix):
        return release
    return release + suffix


def tree_arch(tree: Path, config: dict[str, str]) -> Arch | None:
    """A built tree's architecture: its .config's, else the one whose boot image the tree holds."""
    return of_config(config) or next((arch for arch in ARCHES if (tree / arch.image).exists()), None)


def resolve(origin: str, cache: Path, offline: bool = False) -> Kernel:
    """Turn one --kernel ORIGIN into a Kernel, downloading Debian packages (and, for a kernel of
    another architecture than the host's, its guest root) when needed."""
    kernel = _resolve(origin, cache, offline)
    if kernel.foreign:
        kernel = dataclasses.replace(kernel, root=guestroot.resolve(cache, kernel.arch, offline).path)
    return kernel


def _resolve(origin: str, cache: Path, offline: bool) -> Kernel:
    if not origin.strip():
        raise UserError("--kernel needs a value: debian:SUITE[/FLAVOUR], a built kernel tree or a vmlinuz")
    if origin.startswith(DEBIAN):
        suite, flavour = parse_debian(origin)
        entry = debian.resolve(cache, suite, offline=offline, flavour=flavour)
        image_path, config = _image_in_root(Path(entry.root))
        return _from_image(origin, image_path, debian_label(suite, flavour), None, config, cache, Path(entry.root), flavour)
    path = Path(origin).expanduser()
    if not path.exists():
        raise UserError(f"--kernel {origin}: no such file or directory; pass debian:SUITE[/FLAVOUR], a kernel tree or a vmlinuz")
    if path.is_dir():
        config_file = path / ".config"
        arch = tree_arch(path, parse_config(config_file.read_text()) if config_file.exists() else {})
        if arch is None or not (path / arch.image).exists() or not (path / "modules.order").exists():
            images = " or ".join(a.image for a in ([arch] if arch else ARCHES))
            raise UserError(f"--kernel {origin}: not a built kernel tree (needs {images} and modules.order); run make there first")
        return _from_image(origin, path / arch.image, None, path.resolve(), config_file, cache)
    release = _identify(path, None, cache).banner.split(" ", 1)[0]
    modules = modules_root(path)
    if modules is None:
        raise UserError(f"--kernel {origin}: no lib/modules or usr/lib/modules directory above the image; put its modules there")
    candidates = [path.parent / f"config-{release}", path.parent / "config", modules / release / "config"]
    config = next((c for c in candidates if c.exists()), None)
    # A vmlinuz of an extracted Debian package: the package root holds lib/modules (or usr/lib/modules).
    usr_merged = modules.parent.name == "lib" and modules.parent.parent.name == "usr"
    package = modules.parent.parent.parent if usr_merged else modules.parent.parent
    return _from_image(origin, path.resolve(), None, None, config, cache, package)
