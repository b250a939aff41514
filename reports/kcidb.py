"""KCIDB v5 JSON: one checkout and one build per kernel build, one test per case.

Verdicts map to KCIDB statuses one to one: PASS, FAIL, ERROR (the harness got no observation) and
SKIP (not applicable, with the reason in the comment). FLAKY is not a status: each repeat of a
case is its own test, with its own status. MISS is never produced: every planned case gets a
verdict, and a kernel that does not boot gives ERROR on each of its cases.
Test paths are dotted: madv_collapse.<test>.<parameters>, with the spec after madv_collapse for
cases of a spec checked beside the first one (madv_collapse.documented.populate.anon-...).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from reports.matrix import specs_of

ORIGIN = "collapse_conformance"
VERSION = {"major": 5, "minor": 3}
STATUS = {"PASS": "PASS", "FAIL": "FAIL", "ERROR": "ERROR", "SKIP": "SKIP"}


def _segment(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


def render_kcidb(document: dict[str, object]) -> dict[str, object]:
    run: dict[str, object] = document["run"]  # type: ignore[assignment]
    primary = specs_of(document)[0]
    checkouts, builds, tests = [], [], []
    for kernel in document["kernels"]:  # type: ignore[union-attr]
        build_id = f"{ORIGIN}:{kernel['name']}"
        checkouts.append(
            {
                "id": f"{ORIGIN}:{kernel['name']}",
                "origin": ORIGIN,
                "tree_name": str(kernel["label"]),
                "valid": True,
                "comment": f"{kernel['spec']}: {kernel.get('banner') or kernel['release']}",
                "misc": {"release": kernel["release"], "version": kernel["version"]},
            }
        )
        builds.append(
            {
                "id": build_id,
                "origin": ORIGIN,
                "checkout_id": f"{ORIGIN}:{kernel['name']}",
                "architecture": "x86_64",
                "status": "PASS",
                "comment": f"image {kernel.get('image')}",
                "misc": {"build_id": kernel["build_id"], "accel": kernel.get("accel"), "boot_s": kernel.get("boot_s")},
            }
        )
        for case in document["cases"]:  # type: ignore[union-attr]
            if case["kernel"] != kernel["name"]:
                continue
            spec = str(case.get("spec") or primary)
            path = ".".join(["madv_collapse", *([spec] if spec != primary else []), str(case["test"]), _segment(str(case["params_id"]))])
            test: dict[str, object] = {
                "id": f"{ORIGIN}:{run['run_id']}:{_segment(str(case['nodeid']))}",
                "origin": ORIGIN,
                "build_id": build_id,
                "path": path,
                "status": STATUS[str(case["verdict"])],
                "duration": float(case.get("duration_s") or 0.0),  # type: ignore[arg-type]
                "environment": {"comment": f"virtme-ng VM, {kernel.get('accel')}", "misc": {"worker": case.get("worker")}},
                "misc": {
                    "rule": case.get("rule"),
                    "spec": spec,
                    "repeat": case.get("repeat", 1),
                    "expected": case.get("expected"),
                    "observed": case.get("observed"),
                },
            }
            if case.get("start"):
                test["start_time"] = datetime.fromtimestamp(float(case["start"]), UTC).isoformat()  # type: ignore[arg-type]
            if case.get("message"):
                test["comment"] = str(case["message"]).splitlines()[0][:400]
            if case.get("console"):
                test["log_excerpt"] = str(case["console"])[-16384:]
            tests.append(test)
    return {"version": VERSION, "checkouts": checkouts, "builds": builds, "tests": tests}
