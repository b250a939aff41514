"""Kernel splat policy (suites/kernel_splats.toml): which kernel log lines fail a case."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

POLICY_FILE = Path(__file__).with_name("kernel_splats.toml")


@dataclass(frozen=True)
class Policy:
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    exceptions: tuple[tuple[re.Pattern[str], str], ...]

    def splats(self, messages: list[str]) -> list[str]:
        """'name: message' for each message that matches a pattern and no exception."""
        found = []
        for message in messages:
            if any(regex.search(message) for regex, _ in self.exceptions):
                continue
            for name, regex in self.patterns:
                if regex.search(message):
                    found.append(f"{name}: {message}")
                    break
        return found


@cache
def load(path: Path = POLICY_FILE) -> Policy:
    data = tomllib.loads(path.read_text())
    exceptions = []
    for entry in data.get("exception", []):
        if not entry.get("reason", "").strip():
            raise ValueError(f"{path}: exception {entry.get('regex')!r} has no reason")
        exceptions.append((re.compile(entry["regex"]), entry["reason"]))
    patterns = tuple((entry["name"], re.compile(entry["regex"])) for entry in data["pattern"])
    return Policy(patterns=patterns, exceptions=tuple(exceptions))
