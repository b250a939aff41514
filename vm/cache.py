"""The download and build cache: where it is, and the lock that serialises its writers."""

from __future__ import annotations

import argparse
import fcntl
import os
from pathlib import Path


def default_cache() -> Path:
    """$COLLAPSE_CACHE, else ~/.cache/collapse-conformance."""
    return Path(os.environ.get("COLLAPSE_CACHE") or Path.home() / ".cache" / "collapse-conformance")


def cache_problem(path: Path) -> str | None:
    """Why PATH cannot be a cache the user named (--cache-dir), in one line; None when it can. The
    directory itself may be new, but its parent must exist: a typo (or /nonexistent/dir) must not
    become directories made at / and gigabytes downloaded there."""
    if path.exists() and not path.is_dir():
        return f"--cache-dir {path}: not a directory; pass a directory"
    parent = path.expanduser().absolute().parent
    if not parent.is_dir():
        return f"--cache-dir {path}: {parent} does not exist; create it, or pass a directory inside an existing one"
    return None


def cache_option(text: str) -> Path:
    """argparse type of the commands' --cache-dir (see cache_problem)."""
    path = Path(text).expanduser()
    problem = cache_problem(path) if text.strip() else "--cache-dir needs a directory"
    if problem:
        raise argparse.ArgumentTypeError(problem.removeprefix(f"--cache-dir {path}: "))
    return path


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
