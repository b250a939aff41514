"""Typed reads of JSON values (results.json, run.json, a kernel's description, a KCIDB document).

json.loads gives `object`; these narrow a value once, where it is read, so that callers hold str,
lists and dicts. A value of another shape reads as empty: each caller that must refuse bad input
checks the shape itself first (Results.from_json)."""

from __future__ import annotations

from collections.abc import Mapping


def mapping(value: object) -> dict[str, object]:
    """VALUE when it is a JSON object (the same dict, not a copy), else an empty one."""
    return value if isinstance(value, dict) else {}


def mappings(value: object) -> list[dict[str, object]]:
    """The JSON objects in VALUE when it is a list (the same dicts), else none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def texts(value: object) -> list[str]:
    """Each item of VALUE as text when it is a list, else none."""
    return [str(item) for item in value] if isinstance(value, list) else []


def integer(data: Mapping[str, object], key: str, default: int) -> int:
    """DATA[KEY] as an int (a number or its text), DEFAULT when absent or of another kind."""
    value = data.get(key, default)
    return int(value) if isinstance(value, int | float | str) else default


def number(data: Mapping[str, object], key: str) -> float:
    """DATA[KEY] as a float, 0.0 when absent, null or not a number."""
    value = data.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def planned_cases(run: Mapping[str, object]) -> dict[str, list[str]]:
    """A run header's plan: kernel name -> the node ids planned on it (empty when not recorded)."""
    return {str(kernel): texts(nodeids) for kernel, nodeids in mapping(run.get("planned_cases")).items()}
