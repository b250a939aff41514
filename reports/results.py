"""Run results: an append-only, flushed results.jsonl written case by case, folded into results.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

VERDICTS = ("PASS", "FAIL", "SKIP", "ERROR", "FLAKY")


class ResultsLog:
    """One writer (the pytest controller). A later line for the same nodeid supersedes an earlier one."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "results.jsonl"
        self._file: TextIO | None = None  # opened with the first record: a run without cases leaves nothing

    def append(self, record: dict[str, object]) -> None:
        if self._file is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a")
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_log(path: Path) -> list[dict[str, object]]:
    """Records of a results.jsonl, last one per nodeid, in first-seen order; a torn last line is ignored."""
    records: dict[str, dict[str, object]] = {}
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        records[str(record["nodeid"])] = record
    return list(records.values())


def kernels_of(records: list[dict[str, object]], specs: list[str]) -> list[dict[str, object]]:
    """Each kernel's description, merged over its records, in the order of the --kernel specs."""
    kernels: dict[str, dict[str, object]] = {}
    for record in records:
        info: dict[str, object] = record["kernel_info"]  # type: ignore[assignment]
        kernels.setdefault(str(info["name"]), {}).update({k: v for k, v in info.items() if v is not None})
    order = {spec: index for index, spec in enumerate(specs)}
    return sorted(kernels.values(), key=lambda k: (order.get(str(k["spec"]), len(order)), str(k["name"])))


def write_results(run_dir: Path, run: dict[str, object]) -> dict[str, object]:
    cases = read_log(run_dir / "results.jsonl")
    document = {"run": run, "kernels": kernels_of(cases, list(run.get("kernel_specs", []))), "cases": cases}  # type: ignore[call-overload]
    tmp = run_dir / "results.json.tmp"
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True))
    tmp.replace(run_dir / "results.json")
    return document


def load(path: Path) -> dict[str, object]:
    """results.json, from the file or a run directory."""
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text())
