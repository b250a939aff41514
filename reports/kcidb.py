"""KCIDB v5 JSON: one checkout and one build per kernel build, one test per case.

The stored class decides the status: pass PASS, regression FAIL, infrastructure ERROR (the harness
got no observation), skip SKIP (the reason in the comment), and a documentation discrepancy or a
further spec's FAIL DONE (run, but no verdict on the kernel: KCIDB dashboards must not count it as
a failure; the class is in misc). FLAKY is not a status: each repeat of a case is its own test,
with its own status. MISS is never produced: every planned case gets a verdict, and a kernel that
does not boot gives ERROR on each of its cases. A tree kernel's checkout carries its git commit,
`git describe`, repository URL and, when the tree has changes on top, their patchset hash.
Test paths are dotted: madv_collapse.<test>.<parameters>, with the spec after madv_collapse for
cases of a spec checked beside the first one (madv_collapse.documented.populate.anon-...). They come
from a record's fields, never its pytest node id (`suites/test_collapse.py::test_populate[sid-anon-...]@sid-...`
is madv_collapse.populate.anon-...); each segment must match KCIDB v5's [a-zA-Z0-9_-]+ (path_segment).
Every id starts with the origin: KCIDB_ORIGIN when it is set to a valid origin, else collapse_conformance
(python -m reports kcidb-submit, which sends the report, requires KCIDB_ORIGIN).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TypedDict

from reports.record import CaseClass, Results, architecture

ORIGIN = "collapse_conformance"  # the file report's origin while KCIDB_ORIGIN is unset
ORIGIN_VARIABLE = "KCIDB_ORIGIN"
ORIGIN_PATTERN = re.compile(r"[a-z0-9_]+")  # KCIDB's origin (kcidb-io: Version.origin_pattern, since v3)
PATH_SEGMENT = re.compile(r"[a-zA-Z0-9_-]+")  # one segment of a KCIDB v5 test path (kcidb-io: test_path_re)
VERSION = {"major": 5, "minor": 3}


class KcidbDocument(TypedDict):
    """The KCIDB v5 document render_kcidb writes (kcidb.json): its objects, each a JSON object."""

    version: dict[str, int]
    checkouts: list[dict[str, object]]
    builds: list[dict[str, object]]
    tests: list[dict[str, object]]


STATUS = {
    CaseClass.PASS: "PASS",
    CaseClass.REGRESSION: "FAIL",
    CaseClass.INFRASTRUCTURE: "ERROR",
    CaseClass.SKIP: "SKIP",
    CaseClass.DOCUMENTATION: "DONE",
    CaseClass.OTHER_SPEC: "DONE",
    CaseClass.FLAKY: "DONE",  # never stored on a record; here so the map is total
}


def patchset_hash(diffs: list[str]) -> str:
    """KCIDB's patchset_hash: sha256 over the newline-terminated sha256 of each patch, in order.
    A patch is hashed as its diff, so an mbox and the same commits as a range hash alike."""
    return hashlib.sha256("".join(hashlib.sha256(d.encode()).hexdigest() + "\n" for d in diffs).encode()).hexdigest() if diffs else ""


def _segment(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


def report_origin(environ: Mapping[str, str] = os.environ) -> str:
    """The origin of kcidb.json: KCIDB_ORIGIN when it is a valid origin, else ORIGIN. A bad value
    must not cost a finished run its reports; kcidb-submit refuses it in one line."""
    value = environ.get(ORIGIN_VARIABLE, "")
    return value if ORIGIN_PATTERN.fullmatch(value) else ORIGIN


def path_segment(text: str) -> str:
    """TEXT as one segment of a KCIDB test path: itself when it is one already (every grid's test and
    parameter ids are), else with each other character as _ and a digest of TEXT after it, so that
    ids differing only there (a.b, a_b, a[b]) stay apart and the same id always maps alike."""
    if PATH_SEGMENT.fullmatch(text):
        return text
    return f"{_segment(text)}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _checkout(kernel: dict[str, object], origin: str) -> dict[str, object]:
    misc: dict[str, object] = {"release": kernel["release"], "version": kernel["version"]}
    checkout: dict[str, object] = {
        "id": f"{origin}:{kernel['name']}",
        "origin": origin,
        "tree_name": str(kernel["label"]),
        "valid": True,
        "comment": f"{kernel['origin']}: {kernel.get('banner') or kernel['release']}",
        "misc": misc,
    }
    git = kernel.get("git")
    if isinstance(git, dict):
        for field, key in (("git_commit_hash", "commit"), ("git_repository_url", "remote"), ("git_commit_name", "describe")):
            if git.get(key):
                checkout[field] = git[key]
        checkout["patchset_hash"] = git.get("patchset_hash") or ""  # KCIDB's "no patches on top"
        misc["dirty"] = bool(git.get("dirty"))
    return checkout


def case_path(spec: str, test: str, params_id: str, primary: str) -> str:
    """A case's KCIDB test path; a case without parameters ends at its test."""
    parts = [*([spec] if spec != primary else []), test, *([params_id] if params_id else [])]
    return ".".join(["madv_collapse", *map(path_segment, parts)])


def _not_run(results: Results, kernel: dict[str, object], build_id: str, origin: str) -> list[dict[str, object]]:
    """KCIDB's MISS for each case the run planned on KERNEL but has no record of."""
    missing = sorted(key for key, name in results.completeness.not_run if name == kernel["name"])
    return [
        {
            "id": f"{origin}:{results.run['run_id']}:{_segment(str(kernel['name']))}:{_segment('.'.join(key))}",
            "origin": origin,
            "build_id": build_id,
            "path": case_path(*key, results.primary),
            "status": "MISS",
            "comment": "planned but not run: the run did not finish",
        }
        for key in missing
    ]


def render_kcidb(results: Results, origin: str | None = None) -> KcidbDocument:
    """RESULTS as a KCIDB v5 document whose every id starts with ORIGIN (default: report_origin())."""
    origin = origin or report_origin()
    run = results.run
    primary = results.primary
    checkouts: list[dict[str, object]] = []
    builds: list[dict[str, object]] = []
    tests: list[dict[str, object]] = []
    gaps = results.completeness.gaps()
    for kernel in results.kernels:
        build_id = f"{origin}:{kernel['name']}"
        checkouts.append(_checkout(kernel, origin))
        builds.append(
            {
                "id": build_id,
                "origin": origin,
                "checkout_id": f"{origin}:{kernel['name']}",
                "architecture": architecture(kernel),
                "status": "PASS",
                "comment": f"image {kernel.get('image')}",
                "misc": {
                    "build_id": kernel["build_id"],
                    "accel": kernel.get("accel"),
                    "boot_s": kernel.get("boot_s"),
                    **{key: kernel[key] for key in ("page_size", "hpage_pmd_size") if kernel.get(key) is not None},
                    "tool": results.tool,
                    **({"incomplete": "; ".join(gaps)} if gaps else {}),
                },
            }
        )
        tests += _not_run(results, kernel, build_id, origin)
        for case in results.cases:
            if case.kernel != kernel["name"]:
                continue
            path = case_path(case.spec, case.test, case.params_id, primary)
            test: dict[str, object] = {
                "id": f"{origin}:{run['run_id']}:{_segment(case.nodeid)}",
                "origin": origin,
                "build_id": build_id,
                "path": path,
                "status": STATUS[case.case_class],
                "duration": case.duration_s,
                "environment": {"comment": f"virtme-ng VM, {kernel.get('accel')}", "misc": {"worker": case.worker}},
                "misc": {
                    "rule": case.rule,
                    "spec": case.spec,
                    "class": str(case.case_class),
                    "verdict": str(case.verdict),
                    "repeat": case.repeat,
                    "attempts": case.attempts,
                    "expected": case.expected,
                    "observed": case.observed,
                },
            }
            if case.start:
                test["start_time"] = datetime.fromtimestamp(case.start, UTC).isoformat()
            if case.message:
                test["comment"] = case.message.splitlines()[0][:400]
            if case.console:
                test["log_excerpt"] = case.console[-16384:]
            tests.append(test)
    return {"version": VERSION, "checkouts": checkouts, "builds": builds, "tests": tests}
