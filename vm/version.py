"""The one kernel version type: (major, minor, patch), as the rule book's bounds and the kernels'
releases are compared."""

from __future__ import annotations

import re

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    """'6.1' -> (6, 1, 0); '6.1.0-56-amd64' -> (6, 1, 0); '7.2.10' -> (7, 2, 10); missing parts are 0."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        raise ValueError(f"no kernel version in {text!r}")
    return (int(match[1]), int(match[2]), int(match[3] or 0))
