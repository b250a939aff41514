"""Combine the results of several runs (one CI job per kernel, say) into one run directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from reports.results import load


class MergeError(Exception):
    pass


def merge(runs: list[Path], out: Path) -> dict[str, object]:
    """Write OUT/results.jsonl from RUNS and return the merged run header; a later run's record for
    the same case and kernel replaces an earlier one. Runs of different rule books are refused."""
    documents = [(path, load(path)) for path in runs]
    books = {str(doc["run"]["rule_book"]) for _, doc in documents}  # type: ignore[index]
    if len(books) > 1:
        listing = ", ".join(f"{path}: {doc['run']['rule_book']}" for path, doc in documents)  # type: ignore[index]
        raise MergeError(f"refusing to merge runs of different rule-book versions ({listing}); rerun them with one rule book")
    specs: list[str] = []
    kernel_specs: list[str] = []
    rules: dict[str, str] = {}
    records: dict[str, dict[str, object]] = {}
    for _, doc in documents:
        run: dict[str, object] = doc["run"]  # type: ignore[assignment]
        for spec in run.get("specs") or [run.get("spec", "upstream")]:  # type: ignore[union-attr]
            if spec not in specs:
                specs.append(str(spec))
        kernel_specs += [s for s in run.get("kernel_specs", []) if s not in kernel_specs]  # type: ignore[union-attr]
        rules.update(run.get("rules", {}))  # type: ignore[arg-type]
        for case in doc["cases"]:  # type: ignore[union-attr]
            records[str(case["nodeid"])] = case
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records.values()))
    return {
        "run_id": out.name,
        "rule_book": books.pop(),
        "spec": " + ".join(specs),
        "specs": specs,
        "kernel_specs": kernel_specs,
        "rules": rules,
        "repeat": max(int(doc["run"].get("repeat", 1)) for _, doc in documents),  # type: ignore[union-attr]
        "merged_from": [str(path) for path, _ in documents],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
