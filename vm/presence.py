"""Whether a kernel has a change: decided from the kernel itself where it can be (its git history,
its Debian changelog), else from its version against the change's mainline release and the stable
releases that carry it. A stable or distribution kernel carries backports, so a rule bounded by a
mainline version alone would be wrong on it; the rule book's bounds mean "before/after change X"."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from vm.changelog import StableUpdate, normalize
from vm.version import Version, parse_version


class Basis(StrEnum):
    """How a presence was decided, most direct first."""

    ASSUMED = "assumed"  # --assume CHANGE=present|absent: a vendor kernel patched outside stable
    UNKNOWN = "unknown"  # nothing of the kernel tells: an -rc of the release, or a stable line nobody searched
    GIT = "git history"  # the commit, or a stable commit citing it, is in the tree's history
    CHANGELOG = "Debian changelog"  # the title under one of the package's upstream stable updates
    RELEASE = "release"  # the kernel's version against the mainline release and the listed stable ones


@dataclass(frozen=True)
class Change:
    """A [change.KEY] of the rule book: the mainline commit, its first release, its title, the
    stable releases that carry it (empty: none, and `stable_read` says where that was checked)."""

    key: str
    commit: str
    release: str  # the first mainline tag holding it: v6.13
    title: str
    stable: tuple[Version, ...] = ()
    stable_read: str = ""
    read: str = ""
    # The stable lines searched for a backport ((6, 12), ...); None: a feature, which stable takes
    # on no line. A kernel of a line not searched, before the release, may or may not have it.
    stable_lines: frozenset[tuple[int, int]] | None = None

    @property
    def mainline(self) -> Version:
        return parse_version(self.release.removeprefix("v"))

    @property
    def label(self) -> str:
        stable = f"; stable {', '.join(dotted(v) for v in self.stable)}" if self.stable else ""
        return f"{self.commit[:12]}, {self.release}{stable}"

    def searched(self, version: Version) -> bool:
        return self.stable_lines is None or version[:2] in self.stable_lines

    def on_stable_line(self, version: Version) -> Version | None:
        """The listed stable release of VERSION's line (6.12.113 for any 6.12.y), if any."""
        return next((s for s in self.stable if s[:2] == version[:2]), None)


@dataclass(frozen=True)
class Presence:
    key: str
    present: bool | None  # None: cannot be told from this kernel (a rule bounded by it is not judged)
    basis: Basis
    evidence: str  # one line a reader can check

    def describe(self) -> dict[str, object]:
        return {"present": self.present, "basis": str(self.basis), "evidence": self.evidence}


@dataclass(frozen=True)
class KernelFacts:
    """What the decision reads of a kernel; vm.kernels.Kernel provides it."""

    version: Version
    prerelease: bool = False  # an -rc: before its release, which may hold later changes
    tree: Path | None = None  # a kernel tree: its git history, when it has one
    stable_updates: tuple[StableUpdate, ...] | None = None  # a Debian package's changelog
    changelog: str = ""  # where those were read


def dotted(version: Version) -> str:
    return ".".join(map(str, version))


def decide(change: Change, kernel: KernelFacts, assumed: Mapping[str, bool]) -> Presence:
    if change.key in assumed:
        word = "present" if assumed[change.key] else "absent"
        return Presence(change.key, assumed[change.key], Basis.ASSUMED, f"--assume {change.key}={word}")
    if kernel.tree is not None:
        found = from_git(change, kernel.tree, kernel.version)
        if found is not None:
            return found
    if kernel.stable_updates is not None and not released(change, kernel):
        return from_changelog(change, kernel, kernel.stable_updates)
    return from_release(change, kernel)


def rc_of(change: Change, kernel: KernelFacts) -> bool:
    """KERNEL is an -rc of CHANGE's release: the change may be later in it."""
    return kernel.prerelease and kernel.version[:2] == change.mainline[:2]


def released(change: Change, kernel: KernelFacts) -> bool:
    """At or after the mainline release; an -rc of that release is not."""
    return kernel.version >= change.mainline and not rc_of(change, kernel)


def from_release(change: Change, kernel: KernelFacts) -> Presence:
    version = dotted(kernel.version)
    if released(change, kernel):
        return Presence(change.key, True, Basis.RELEASE, f"{version} is at or after {change.release}")
    hint = f"pass --assume {change.key}=present|absent"
    if rc_of(change, kernel):
        why = f"{version} is an -rc of {change.release}: without its git history it may or may not hold {change.commit[:12]}; {hint}"
        return Presence(change.key, None, Basis.UNKNOWN, why)
    stable = change.on_stable_line(kernel.version)
    if stable is not None:
        has = kernel.version >= stable
        where = "at or after" if has else "before"
        return Presence(change.key, has, Basis.RELEASE, f"{version} is {where} stable {dotted(stable)} ({change.release} backport)")
    if not change.searched(kernel.version):
        why = f"{version} is before {change.release}, on a stable line nobody searched for its backport; {hint}"
        return Presence(change.key, None, Basis.UNKNOWN, why)
    lines = ", ".join(dotted(s) for s in change.stable) or "none"
    why = f"{version} is before {change.release}, on no stable line that carries it (stable: {lines})"
    return Presence(change.key, False, Basis.RELEASE, why)


def from_changelog(change: Change, kernel: KernelFacts, updates: tuple[StableUpdate, ...]) -> Presence:
    """A Debian kernel before the mainline release: present when the title stands under one of its
    own line's stable updates."""
    line = [u for u in updates if u.version[:2] == kernel.version[:2]]
    title = normalize(change.title)
    hits = sorted(u.version for u in line if title in u.titles)
    if hits:
        return Presence(change.key, True, Basis.CHANGELOG, f"'{change.title}' under ChangeLog-{dotted(hits[0])} in {kernel.changelog}")
    span = f"{dotted(min(u.version for u in line))}..{dotted(max(u.version for u in line))}" if line else "none"
    why = f"'{change.title}' in none of the {len(line)} stable updates ({span}) in {kernel.changelog}"
    return Presence(change.key, False, Basis.CHANGELOG, why)


def _git(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)


def from_git(change: Change, tree: Path, version: Version) -> Presence | None:
    """The commit in HEAD's history, or a stable commit citing it ('commit X upstream.',
    '[ Upstream commit X ]'); None when TREE has no usable history (not git, or shallow)."""
    top = _git(tree, "rev-parse", "--show-toplevel").stdout.strip()
    if not top or Path(top).resolve() != tree.resolve():
        return None  # not a checkout of its own (a tree inside another repository has no history of its own)
    if _git(tree, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        return None
    if _git(tree, "merge-base", "--is-ancestor", change.commit, "HEAD").returncode == 0:
        return Presence(change.key, True, Basis.GIT, f"{change.commit[:12]} is in HEAD's history")
    known = _git(tree, "cat-file", "-e", f"{change.commit}^{{commit}}").returncode == 0
    if not known and not has_tag(tree, version[:2]):
        return None  # history without mainline's (a tarball committed as is): the history tells nothing
    citing = cited_upstream(tree, head_of(tree), version[:2]).get(change.commit[:12])
    if citing:
        return Presence(change.key, True, Basis.GIT, f"{citing} cites upstream commit {change.commit[:12]}")
    return Presence(change.key, False, Basis.GIT, f"neither {change.commit[:12]} nor a commit citing it is in HEAD's history")


UPSTREAM_CITE = re.compile(r"^\s*(?:commit ([0-9a-f]{12,40}) upstream|\[ Upstream commit ([0-9a-f]{12,40}) \])", re.I | re.M)
CITE_GREP = r"^\s*(commit [0-9a-f]{12,40} upstream|\[ Upstream commit [0-9a-f]{12,40} \])"


def has_tag(tree: Path, line: tuple[int, int]) -> bool:
    return _git(tree, "rev-parse", "-q", "--verify", f"v{line[0]}.{line[1]}^{{commit}}").returncode == 0


def head_of(tree: Path) -> str:
    return _git(tree, "rev-parse", "HEAD").stdout.strip()


@cache
def cited_upstream(tree: Path, head: str, line: tuple[int, int]) -> dict[str, str]:
    """Upstream commit (12 hex) -> the commit citing it, over the stable commits since the line's
    tag (vX.Y..HEAD; all of HEAD when the tag is missing); git filters the commits, and one log per
    tree and HEAD is read."""
    span = f"v{line[0]}.{line[1]}..{head}" if has_tag(tree, line) else head
    log = _git(tree, "log", "--no-merges", "-i", "-E", f"--grep={CITE_GREP}", "--format=%x00%h%n%B", span).stdout
    cited: dict[str, str] = {}
    for entry in log.split("\0"):
        head, _, body = entry.partition("\n")
        for match in UPSTREAM_CITE.finditer(body):
            cited.setdefault((match[1] or match[2])[:12], head)
    return cited
