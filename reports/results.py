"""Run results: an append-only, flushed results.jsonl written case by case, folded into results.json."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from reports.jsonvalues import mapping, mappings, texts
from reports.record import Results, ResultsError, upgrade

HEADER = "run.json"  # the run's header, written with the first record: a killed run can be rendered


class ResultsLog:
    """One writer (the pytest controller). A later line for the same nodeid supersedes an earlier one."""

    def __init__(self, run_dir: Path, run: dict[str, object]) -> None:
        self.run_dir = run_dir
        self.run = run
        self.path = run_dir / "results.jsonl"
        self._file: TextIO | None = None  # opened with the first record: a run without cases leaves nothing

    def append(self, record: dict[str, object]) -> None:
        if self._file is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / HEADER).write_text(json.dumps(self.run, indent=1, sort_keys=True))
            self._file = self.path.open("a")
            if self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
                self._file.write("\n")  # a killed writer's torn line (--resume): the next record starts a line of its own
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_log(path: Path) -> list[dict[str, object]]:
    """Records of a results.jsonl, last one per nodeid, in first-seen order; a line that is not
    JSON is skipped (log_torn says whether the last one was), one that is not a case record is a ResultsError."""
    records: dict[str, dict[str, object]] = {}
    if not path.exists():
        return []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or "nodeid" not in record or not isinstance(record.get("kernel_info"), dict):
            raise ResultsError(f"{path}:{number}: not a case record (no nodeid or kernel_info); pass a run directory written by this suite")
        records[str(record["nodeid"])] = record
    return list(records.values())


def log_torn(path: Path) -> bool:
    """Whether the log's last line is a torn record: the writer was killed mid-line. (A torn line
    with records after it was left by a killed session that --resume then continued: its case ran again.)"""
    lines = path.read_text().splitlines() if path.exists() else []
    if not lines or not lines[-1].strip():
        return False
    try:
        json.loads(lines[-1])
    except json.JSONDecodeError:
        return True
    return False


def kernels_of(records: list[dict[str, object]], origins: list[str]) -> list[dict[str, object]]:
    """Each kernel's description, merged over its records, in the order of the --kernel values (ORIGINS)."""
    kernels: dict[str, dict[str, object]] = {}
    for record in records:
        info = mapping(record["kernel_info"])  # read_log refuses a record whose kernel_info is no dict
        kernels.setdefault(str(info.get("name")), {}).update({k: v for k, v in info.items() if v is not None})
    order = {origin: index for index, origin in enumerate(origins)}
    return sorted(kernels.values(), key=lambda k: (order.get(str(k.get("origin")), len(order)), str(k["name"])))


def fold_log(run_dir: Path, run: dict[str, object]) -> Results:
    """The run's results from its results.jsonl (the log written case by case) and its header RUN;
    both in the current vocabulary first (reports.record.upgrade), for the log of an older run."""
    data = upgrade({"run": run, "cases": read_log(run_dir / "results.jsonl")})
    data["kernels"] = kernels_of(mappings(data["cases"]), texts(mapping(data["run"]).get("kernel_origins")))
    log = run_dir / "results.jsonl"
    return Results.from_json(data, str(log), torn_records=int(log_torn(log)))


def write_results(run_dir: Path, results: Results) -> None:
    """results.json, replaced atomically; never by a document with fewer cases (that loses results)."""
    target = run_dir / "results.json"
    if target.exists():
        try:
            before = len(json.loads(target.read_text()).get("cases", []))
        except (OSError, ValueError, AttributeError):
            before = 0  # unreadable: nothing to lose
        if len(results.cases) < before:
            raise ResultsError(
                f"{target}: holds {before} cases, the new document {len(results.cases)}; not replaced. "
                "Render into another directory, or delete it first if that is really meant"
            )
    tmp = run_dir / "results.json.tmp"
    tmp.write_text(json.dumps(results.to_json(), indent=1, sort_keys=True))
    tmp.replace(target)


def write_per_kernel(results: Results, run_dir: Path, name: str, render: Callable[[Results, dict[str, object]], str]) -> list[Path]:
    """One file per kernel, NAME with {label} filled in by the kernel's display name (junit-{label}.xml,
    ktap-{label}.txt): unique in the run, so two kernels of one label never share a file."""
    paths = []
    shown = results.display_names
    for kernel in results.kernels:
        path = run_dir / name.format(label=shown[str(kernel["name"])])
        path.write_text(render(results, kernel))
        paths.append(path)
    return paths
