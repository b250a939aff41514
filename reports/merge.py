"""Combine the results of several runs (one CI job per kernel, say) into one run directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from reports.jsonvalues import planned_cases
from reports.record import load


class MergeError(Exception):
    pass


def merge(runs: list[Path], out: Path) -> dict[str, object]:
    """Write OUT/results.jsonl from RUNS and return the merged run header; a later run's record for
    the same case and kernel replaces an earlier one. Runs of different rule books are refused, and
    so is an OUT that already holds a run's results (they would be overwritten). The merged run is
    finished only when every run is, and keeps their plans and torn records: merging never makes an
    incomplete run look complete (reports.record.Completeness reads the header written here)."""
    if (out / "results.jsonl").exists() or (out / "results.json").exists():
        raise MergeError(f"{out} already holds a run's results; pass a new --out")
    documents = [(path, load(path)) for path in runs]
    books = {doc.rule_book for _, doc in documents}
    if len(books) > 1:
        listing = ", ".join(f"{path}: {doc.rule_book}" for path, doc in documents)
        raise MergeError(f"refusing to merge runs of different rule-book versions ({listing}); rerun them with one rule book")
    specs: list[str] = []
    kernel_origins: list[str] = []
    rules: dict[str, str] = {}
    records: dict[str, dict[str, object]] = {}
    planned: dict[str, list[str]] = {}
    for _, doc in documents:
        specs += [spec for spec in doc.specs if spec not in specs]
        for name, nodeids in planned_cases(doc.run).items():
            planned[name] = list(dict.fromkeys([*planned.get(name, []), *nodeids]))
        kernel_origins += [o for o in doc.kernel_origins if o not in kernel_origins]
        rules.update(doc.statements)
        for case in doc.cases:
            # Keyed by node id and kernel: two builds with one label share node ids (no xdist group).
            records[f"{case.nodeid} {case.kernel}"] = case.to_json()
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records.values()))
    commits = list(dict.fromkeys(str(doc.run["tool_commit"]) for _, doc in documents if doc.run.get("tool_commit")))
    return {
        "run_id": out.name,
        **({"tool_commit": commits[0]} if len(commits) == 1 else {}),  # runs of several checkouts: none is the one
        **({"planned_cases": planned} if planned else {}),
        **({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")} if all(doc.run.get("finished") for _, doc in documents) else {}),
        **({"torn_records": torn} if (torn := sum(doc.completeness.torn_records for _, doc in documents)) else {}),
        "rule_book": books.pop(),
        "spec": " + ".join(specs),
        "specs": specs,
        "kernel_origins": kernel_origins,
        "rules": rules,
        "repeat": max(doc.repeat for _, doc in documents),
        "merged_from": [str(path) for path, _ in documents],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
