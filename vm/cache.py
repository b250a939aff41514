"""The download and build cache: where it is, and the lock that serialises its writers."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def default_cache() -> Path:
    """$COLLAPSE_CACHE, else ~/.cache/collapse-conformance."""
    return Path(os.environ.get("COLLAPSE_CACHE") or Path.home() / ".cache" / "collapse-conformance")


class CacheLock:
    """Serialises kernel downloads and probes between concurrent runs and xdist workers."""

    def __init__(self, cache: Path) -> None:
        cache.mkdir(parents=True, exist_ok=True)
        self.path = cache / ".lock"

    def __enter__(self) -> None:
        self.file = self.path.open("w")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
