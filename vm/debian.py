"""Fetch Debian kernel packages through a private apt configuration kept in the cache.

The host's apt sources are only read (to find its Debian mirror), never edited. Every
index is checked against the Debian archive keyring; no source is ever marked trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fixtures.arch import Arch, current, of_flavour
from reports.exits import UserError

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# How long a resolved "newest kernel of SUITE" is trusted before the indexes are refreshed.
INDEX_MAX_AGE_S = 24 * 3600

# suite -> (main-archive suites, security suites)
SUITES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bullseye": (("bullseye", "bullseye-updates"), ("bullseye-security",)),
    "bookworm": (("bookworm", "bookworm-updates"), ("bookworm-security",)),
    "bookworm-backports": (("bookworm-backports",), ()),
    "trixie": (("trixie", "trixie-updates"), ("trixie-security",)),
    "trixie-backports": (("trixie-backports",), ()),
    "sid": (("sid",), ()),
    "experimental": (("experimental",), ()),
}
META_PACKAGE = "linux-image-{flavour}"  # Debian's meta package naming a flavour's newest kernel
KERNEL_PACKAGE = re.compile(r"^linux-(image|binary|modules|base)-\d[\w.+~-]*$")


class NotCached(UserError):
    """Offline (pytest --collect-only), a Debian kernel the cache does not hold yet."""


def default_flavour() -> str:
    """The flavour of debian:SUITE (no /FLAVOUR): the host architecture's default one."""
    return current().flavours[0]


@dataclass(frozen=True)
class DebianKernel:
    suite: str
    meta_version: str
    packages: tuple[str, ...]  # "name=version"
    root: str  # extracted tree


def host_mirrors() -> tuple[str, str | None]:
    """The host's Debian mirror and security mirror, read from its apt sources."""
    main = os.environ.get("COLLAPSE_DEBIAN_MIRROR")
    security = os.environ.get("COLLAPSE_DEBIAN_SECURITY_MIRROR")
    uris: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file() or path.suffix not in ("", ".list", ".sources"):
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("URIs:"):
                uris += line.split()[1:]
            elif line.startswith("deb "):
                uris += [w for w in line.split() if "://" in w][:1]
    for uri in uris:
        stripped = uri.rstrip("/")
        if main is None and stripped.endswith("/debian"):
            main = stripped
        if security is None and stripped.endswith("/debian-security"):
            security = stripped
    if main is None:
        raise UserError("no Debian mirror found in the host's apt sources; set COLLAPSE_DEBIAN_MIRROR=URL")
    return main, security


class PrivateApt:
    """apt-get/apt-cache confined to CACHE/apt/SUITE (SUITE-ARCH for a foreign architecture's
    indexes): own sources, lists, status and archives."""

    def __init__(self, cache: Path, suite: str, arch: Arch | None = None) -> None:
        if suite not in SUITES:
            raise UserError(f"unknown Debian suite {suite!r}; use one of: {', '.join(SUITES)}")
        self.suite = suite
        self.arch = arch or current()
        self.dir = cache / "apt" / (suite if self.arch == current() else f"{suite}-{self.arch.debian}")
        self.sources = self.dir / "sources.list"
        self.lists = self.dir / "lists"
        self.stamp = self.dir / "updated"

    def _options(self) -> list[str]:
        opts = {
            "Dir::Etc::SourceList": str(self.sources),
            "Dir::Etc::SourceParts": str(self.dir / "empty"),
            "Dir::Etc::Preferences": str(self.dir / "empty" / "preferences"),
            "Dir::Etc::PreferencesParts": str(self.dir / "empty"),
            "Dir::State": str(self.dir / "state"),
            "Dir::State::Lists": str(self.lists),
            "Dir::State::status": str(self.dir / "status"),
            "Dir::Cache": str(self.dir / "cache"),
            "APT::Architecture": self.arch.debian,
            "APT::Architectures": self.arch.debian,
            "Debug::NoLocking": "1",
            # Downloads land in a directory owned by root; apt's sandbox user cannot write there.
            "APT::Sandbox::User": "root",
        }
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def _write_config(self) -> None:
        main, security = host_mirrors()
        mains, securities = SUITES[self.suite]
        lines = [f"deb [signed-by={KEYRING}] {main} {s} main" for s in mains]
        if security:
            lines += [f"deb [signed-by={KEYRING}] {security} {s} main" for s in securities]
        for sub in ("empty", "state", "cache/archives/partial", "lists/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "status").touch()
        self.sources.write_text("\n".join(lines) + "\n")

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        return _run_or_explain([tool, *self._options(), *args], self.dir, f"{tool} {' '.join(args)} for {self.suite}", cwd)

    def fresh(self) -> bool:
        return self.stamp.exists() and time.time() - self.stamp.stat().st_mtime < INDEX_MAX_AGE_S

    def update(self) -> None:
        if not KEYRING.exists():
            raise UserError(f"{KEYRING} missing; install it with: apt-get install debian-archive-keyring")
        self._write_config()
        out = self.run("apt-get", "update", "-q", "-o", "APT::Update::Error-Mode=any")
        if re.search(r"^(W|E): .*(NO_PUBKEY|not signed|BADSIG)", out, re.M):
            raise UserError(f"Debian {self.suite} indexes failed signature checks")
        self.stamp.touch()

    def candidate(self, package: str) -> dict[str, str]:
        return parse_control(self.run("apt-cache", "show", "--no-all-versions", package))

    def download(self, package: str, version: str, dest: Path) -> Path:
        self.run("apt-get", "download", "-q", f"{package}={version}", cwd=dest)
        (deb,) = dest.glob(f"{package}_*.deb")
        return deb


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_deb(apt: PrivateApt, cache: Path, fields: dict[str, str]) -> Path:
    """The package's .deb in CACHE/debs, checked against the SHA256 of the signed index on every use.

    A cached file that does not match (tampered, truncated) is reported, deleted and fetched again.
    """
    name, version = fields["Package"], fields["Version"]
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / f"{name}_{version.replace(':', '%3a')}_{fields.get('Architecture', apt.arch.debian)}.deb"
    if deb.exists():
        if sha256(deb) == fields["SHA256"]:
            return deb
        print(f"collapse-conformance: {deb.name} in the cache does not match the signed index (SHA256); fetching it again", file=sys.stderr)
        deb.unlink()
    need = int(fields.get("Size", 0)) + int(fields.get("Installed-Size", 0)) * 1024
    free = shutil.disk_usage(cache).free
    if free < need:
        raise UserError(f"no space for {name} in {cache}: needs {need >> 20} MiB, {free >> 20} MiB free; free space or pass --cache-dir")
    with tempfile.TemporaryDirectory(dir=debs, prefix=".download-") as tmp:
        fetched = apt.download(name, version, Path(tmp))
        if sha256(fetched) != fields["SHA256"]:
            raise UserError(f"{fetched.name} from the mirror does not match the signed index; not using it")
        fetched.rename(deb)
    return deb


def parse_control(text: str) -> dict[str, str]:
    """The first stanza of a Debian control text, continuation lines folded."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def kernel_dependencies(depends: str) -> list[str]:
    """Kernel package names among a Depends field (first alternative of each)."""
    names = []
    for clause in depends.split(","):
        name = clause.split("|")[0].split("(")[0].split(":")[0].strip()
        if KERNEL_PACKAGE.match(name):
            names.append(name)
    return names


def flavour_arch(flavour: str) -> Arch:
    """The architecture of a Debian kernel flavour; an unknown flavour is the user's to fix."""
    try:
        return of_flavour(flavour)
    except ValueError as err:
        raise UserError(f"debian:SUITE/FLAVOUR: {err}") from None


def resolve(cache: Path, suite: str, offline: bool = False, flavour: str | None = None) -> DebianKernel:
    """The newest kernel of SUITE's FLAVOUR (default: the host's), downloaded and extracted under the cache."""
    flavour = flavour or default_flavour()
    apt = PrivateApt(cache, suite, flavour_arch(flavour))
    # The host's default flavour keeps its record's old name: caches written before flavours stay valid.
    record = cache / "debian" / (f"{suite}.json" if flavour == default_flavour() else f"{suite}-{flavour}.json")
    if record.exists() and (offline or apt.fresh()):
        known = DebianKernel(**{**json.loads(record.read_text())})
        if Path(known.root, ".complete").exists():
            return DebianKernel(**{**asdict(known), "packages": tuple(known.packages)})
    if offline:
        raise NotCached(f"debian:{suite}/{flavour} is not in the cache; run once with network access")
    apt.update()
    meta_package = META_PACKAGE.format(flavour=flavour)
    meta = apt.candidate(meta_package)
    if not meta:
        raise UserError(f"Debian {suite} has no {meta_package} for {apt.arch.debian}; pick another suite or flavour")
    wanted: dict[str, dict[str, str]] = {}
    queue = kernel_dependencies(meta.get("Depends", ""))
    while queue:
        name = queue.pop(0)
        if name in wanted:
            continue
        wanted[name] = apt.candidate(name)
        queue += kernel_dependencies(wanted[name].get("Depends", ""))
    if not wanted:
        raise UserError(f"{meta_package} in {suite} names no kernel package")
    # All packages of one kernel share its ABI name and version: one cache entry per build.
    entry_name = "+".join(sorted({f"{n.split('-', 2)[2]}_{f['Version']}" for n, f in wanted.items()}))
    root = cache / "kernels" / "debian" / entry_name
    if not (root / ".complete").exists():
        _extract([fetch_deb(apt, cache, fields) for fields in wanted.values()], root)
    kernel = DebianKernel(
        suite=suite,
        meta_version=meta["Version"],
        packages=tuple(f"{n}={f['Version']}" for n, f in sorted(wanted.items())),
        root=str(root),
    )
    record.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(record, json.dumps(asdict(kernel), indent=1))
    return kernel


def _extract(debs: list[Path], root: Path) -> None:
    """Unpack into a temporary directory, then rename: never a half-written entry."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".partial-") as tmp:
        staging = Path(tmp) / "root"
        for deb in debs:
            _run_or_explain(["dpkg-deb", "-x", str(deb), str(staging)], root.parent)
        for moddir in _module_dirs(staging):
            _run_or_explain(["depmod", "-b", str(moddir.parents[2]), moddir.name], root.parent)
        (staging / ".complete").write_text("\n".join(deb.name for deb in debs) + "\n")
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)


def _run_or_explain(command: list[str], where: Path, what: str = "", cwd: Path | None = None) -> str:
    """COMMAND's stdout; a failure becomes one UserError line (running out of space named as such)."""
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode != 0:
        if "No space left" in proc.stderr:
            raise UserError(f"no space left in {where}; free space or pass --cache-dir")
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"{what or command[0]} failed: {last}")
    return proc.stdout


def _module_dirs(root: Path) -> list[Path]:
    """lib/modules/RELEASE directories (usr-merged or not) under an extracted package root."""
    dirs = []
    for base in (root / "lib" / "modules", root / "usr" / "lib" / "modules"):
        if base.is_dir():
            dirs += [d for d in base.iterdir() if d.is_dir() and (d / "kernel").is_dir()]
    return dirs


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
