"""The upstream stable updates a Debian kernel package lists in its changelog: which stable releases
it took, title by title. A change backported to a stable line is present in a Debian kernel when its
title stands under one of that line's updates (vm/presence.py decides it)."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from vm.version import Version, parse_version

# "    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.113"
CHANGELOG_URL = re.compile(r"^\s+https?://\S+/ChangeLog-(\d+\.\d+(?:\.\d+)?)\s*$")
ITEM = re.compile(r"^    - (.*)$")
CONTINUATION = re.compile(r"^      (\S.*)$")
ARCHES = re.compile(r"^\[[a-z0-9_,-]+\]\s+")  # "[amd64] x86/...": Debian marks arch-only changes
CVES = re.compile(r"\s*\((?:CVE-\d+-\d+(?:,\s*)?)+\)$")


@dataclass(frozen=True)
class StableUpdate:
    """One upstream stable release a package took (several URLs in a row share their titles)."""

    version: Version
    titles: frozenset[str]


def normalize(title: str) -> str:
    """A shortlog title as the changelog and the rule book both spell it: no arch mark, no CVE
    suffix, white space folded."""
    return CVES.sub("", ARCHES.sub("", " ".join(title.split())))


def stable_updates(text: str) -> list[StableUpdate]:
    """Every 'New upstream stable update' block of a Debian kernel changelog, newest first."""
    updates: list[StableUpdate] = []
    versions: list[Version] = []
    titles: list[str] = []

    def close() -> None:
        if versions:
            frozen = frozenset(normalize(t) for t in titles)
            updates.extend(StableUpdate(v, frozen) for v in versions)
        versions.clear()
        titles.clear()

    in_titles = False
    for line in text.splitlines():
        url = CHANGELOG_URL.match(line)
        if url:
            if in_titles:
                close()
            versions.append(parse_version(url.group(1)))
            in_titles = False
            continue
        if not versions:
            continue
        item = ITEM.match(line)
        continuation = CONTINUATION.match(line)
        if item:
            titles.append(item.group(1))
            in_titles = True
        elif continuation and titles and in_titles:
            titles[-1] += " " + continuation.group(1)
        elif in_titles or not line.strip() == "":
            close()
            in_titles = False
    close()
    return updates


def find(root: Path, release: str, version: Version) -> tuple[Path, list[StableUpdate]] | None:
    """The changelog of the kernel package RELEASE (uname -r) under an extracted package tree ROOT,
    with its stable updates: linux-image-RELEASE's, or the split packages' (linux-base-RELEASE, ...).
    Only a changelog that lists VERSION's own stable update is the kernel's (a /boot kernel's root is
    /, where other packages' changelogs lie)."""
    names = [f"{kind}-{release}" for kind in ("linux-image", "linux-base", "linux-binary", "linux-modules")]
    for name in names:
        for path in sorted((root / "usr/share/doc" / name).glob("changelog*.gz")):
            updates = read(path)
            if any(u.version == version for u in updates):
                return path, updates
    return None


def read(path: Path) -> list[StableUpdate]:
    with gzip.open(path, "rt", errors="replace") as f:
        return stable_updates(f.read())
