"""The typed results of a run: one record per case, with its verdict and its class.

A case's class is decided once, when it is judged (the report hook in suites/plugin/verdicts.py,
with the class the judge in suites/test_collapse.py gives a FAIL), and stored in the record as
"class". Every report reads it; none works it out again. The one exception is a record written
before classes existed: it is classed once, on load, by `legacy_class`.

The model is kunit_tool's TestStatus and TestCounts.get_status(): an enum per case, and one
function (`worst`) that combines the classes of several cases into one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path


class Verdict(StrEnum):
    """What was observed of one case."""

    PASS = "PASS"
    FAIL = "FAIL"  # the kernel did something the rule does not allow
    ERROR = "ERROR"  # no observation: boot, agent or set-up failure
    SKIP = "SKIP"  # not applicable, with a reason


class CaseClass(StrEnum):
    """What a case means for the kernel under test, in the order reports list them (worst first)."""

    REGRESSION = "regression"  # a FAIL of the fully checked spec: the kernel breaks an agreed rule
    INFRASTRUCTURE = "infrastructure"  # an ERROR: the harness got no observation; nothing is known of the kernel
    FLAKY = "flaky"  # repeats of one case disagree (only ever a combination)
    DOCUMENTATION = "documentation"  # a FAIL of a rule stating what the man pages or transhuge.rst say
    OTHER_SPEC = "other-spec"  # a FAIL of a further spec checked beside the first (proposal, say)
    PASS = "pass"
    SKIP = "skip"

    @property
    def title(self) -> str:
        return TITLES[self]

    @property
    def is_failure(self) -> bool:
        """Listed under the matrix with its message (everything but pass and skip)."""
        return self not in (CaseClass.PASS, CaseClass.SKIP)


TITLES = {
    CaseClass.REGRESSION: "Regressions (the kernel breaks an agreed rule)",
    CaseClass.INFRASTRUCTURE: "Infrastructure errors (no observation; not a verdict on the kernel)",
    CaseClass.FLAKY: "Flaky cases (repeats disagree)",
    CaseClass.DOCUMENTATION: "Documentation discrepancies (kernel vs man page / transhuge.rst)",
    CaseClass.OTHER_SPEC: "Differences from the other specs checked (not regressions)",
    CaseClass.PASS: "Passed",
    CaseClass.SKIP: "Skipped (not applicable)",
}
# Short cell words for the overview (at most 5 characters).
WORDS = {
    CaseClass.REGRESSION: "FAIL",
    CaseClass.INFRASTRUCTURE: "ERROR",
    CaseClass.FLAKY: "FLAKY",
    CaseClass.DOCUMENTATION: "DOC",
    CaseClass.OTHER_SPEC: "SPEC",
    CaseClass.PASS: "PASS",
    CaseClass.SKIP: "SKIP",
}


def worst(classes: Iterable[CaseClass]) -> CaseClass:
    """The class of several cases taken together: the first in report order (SKIP when empty)."""
    order = list(CaseClass)
    return min(classes, key=order.index, default=CaseClass.SKIP)


def combine_repeats(classes: list[CaseClass]) -> CaseClass:
    """One case's repeats: their common class, or FLAKY when they disagree."""
    return classes[0] if len(set(classes)) == 1 else CaseClass.FLAKY


def failure_class(group: str, spec: str, primary: str) -> CaseClass:
    """The class of a FAIL, decided by the judge: a rule stating what the documentation says gives a
    documentation discrepancy, a further spec's rule a FAIL of that spec, any other a regression."""
    if group == "documentation":
        return CaseClass.DOCUMENTATION
    if spec != primary:
        return CaseClass.OTHER_SPEC
    return CaseClass.REGRESSION


OUTCOME_CLASS = {Verdict.PASS: CaseClass.PASS, Verdict.SKIP: CaseClass.SKIP, Verdict.ERROR: CaseClass.INFRASTRUCTURE}


class ConformanceFailure(AssertionError):
    """Raised by the judge: the kernel did something a rule does not allow (a FAIL, never an ERROR).
    It carries the class the judge gave the FAIL."""

    def __init__(self, message: str, case_class: CaseClass = CaseClass.REGRESSION) -> None:
        super().__init__(message)
        self.case_class = case_class


KERNEL_FIELDS = frozenset({"name", "label", "origin", "version", "release", "build_id"})  # what every report reads

# Documents written before 2026.12 called a kernel's --kernel value (debian:SUITE, a tree or a
# vmlinuz: its origin) its "spec", like the rule specs, and the run header's list of them
# "kernel_specs". `upgrade` renames them, once, as a document is loaded (Results.from_json, and
# fold_log for a results.jsonl and its run.json): every reader sees "origin" and "kernel_origins".
# A case's own "spec" is the rule spec it was judged under: it keeps its name.
LEGACY_KERNEL_KEYS = {"spec": "origin"}
LEGACY_RUN_KEYS = {"kernel_specs": "kernel_origins"}


class ResultsError(Exception):
    """A results file that cannot be read as results: the message names the file and the fix."""


def _renamed(data: object, legacy: dict[str, str]) -> object:
    """DATA (when a dict) with each legacy key under its current name; when both are there, the current one wins."""
    if not isinstance(data, dict) or not legacy.keys() & data.keys():
        return data
    return {legacy.get(key, key): value for key, value in data.items() if key not in legacy or legacy[key] not in data}


def _upgrade_case(case: object) -> object:
    if isinstance(case, dict) and "kernel_info" in case:
        return {**case, "kernel_info": _renamed(case["kernel_info"], LEGACY_KERNEL_KEYS)}
    return case


def upgrade_run(run: dict[str, object]) -> dict[str, object]:
    """A run header (run.json, results.json's run) in the current vocabulary."""
    return _renamed(run, LEGACY_RUN_KEYS)  # type: ignore[return-value]


def upgrade(data: dict[str, object]) -> dict[str, object]:
    """A results document (run, cases and, when it has them, kernels) in the current vocabulary: its
    kernels' and its cases' kernel_info "spec" is "origin", its run's "kernel_specs" "kernel_origins".
    Parts of the wrong shape are left as they are, for the caller to refuse."""
    upgraded = dict(data)
    if "run" in data:
        upgraded["run"] = _renamed(data["run"], LEGACY_RUN_KEYS)
    if isinstance(data.get("kernels"), list):
        upgraded["kernels"] = [_renamed(kernel, LEGACY_KERNEL_KEYS) for kernel in data["kernels"]]  # type: ignore[attr-defined]
    if isinstance(data.get("cases"), list):
        upgraded["cases"] = [_upgrade_case(case) for case in data["cases"]]  # type: ignore[attr-defined]
    return upgraded


@dataclass
class CaseRecord:
    """One case's result, as results.jsonl and results.json hold it (the class under "class")."""

    nodeid: str
    test: str
    case_id: str  # with -repN when repeated
    params_id: str
    params: dict[str, str]
    kernel: str  # the kernel's unique name (label-buildid)
    kernel_info: dict[str, object]
    spec: str
    repeat: int
    rule: str | None
    group: str
    expected: dict[str, object] | None
    verdict: Verdict = Verdict.ERROR
    case_class: CaseClass = CaseClass.INFRASTRUCTURE
    message: str | None = None
    observed: dict[str, object] | None = None
    raw: dict[str, object] | None = None
    guest_s: float | None = None
    kmsg: list[str] | None = None
    console: str | None = None
    duration_s: float = 0.0
    start: float | None = None
    stop: float | None = None
    worker: str = "main"

    @property
    def attempts(self) -> int:
        """How many calls the guest made (EAGAIN is retried): more than one is worth a look."""
        call = (self.raw or {}).get("call")
        return int(call.get("attempts", 1)) if isinstance(call, dict) else 1

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["class"] = str(data.pop("case_class"))
        data["verdict"] = str(self.verdict)
        return data

    @classmethod
    def from_json(cls, data: dict[str, object], primary: str) -> CaseRecord:
        """A record from JSON; one written before classes existed is classed once here."""
        known = {f.name for f in fields(cls)} - {"case_class"}
        values = {k: v for k, v in data.items() if k in known}
        missing = {"nodeid", "test", "case_id", "params_id", "kernel", "verdict"} - values.keys()
        if missing:
            raise ValueError(f"a case lacks {', '.join(sorted(missing))}")
        values.setdefault("params", {})
        values.setdefault("kernel_info", {})
        values.setdefault("spec", primary)
        values["spec"] = values["spec"] or primary
        values.setdefault("repeat", 1)
        values.setdefault("rule", None)
        values.setdefault("group", "unruled")
        values.setdefault("expected", None)
        values["verdict"] = Verdict(values["verdict"])
        record = cls(**values)  # type: ignore[arg-type]
        stored = data.get("class")
        record.case_class = CaseClass(stored) if stored else legacy_class(record, primary)
        return record


def legacy_class(record: CaseRecord, primary: str) -> CaseClass:
    """The class of a record written before classes were stored (results.json of 2026.11.0)."""
    if record.verdict is Verdict.FAIL:
        return failure_class(record.group, record.spec, primary)
    return OUTCOME_CLASS[record.verdict]


@dataclass
class Results:
    """A run: its header, its kernels (descriptions, in --kernel order) and its case records."""

    run: dict[str, object]
    kernels: list[dict[str, object]]
    cases: list[CaseRecord] = field(default_factory=list)

    @property
    def specs(self) -> list[str]:
        """The run's specs, the fully checked one first (older runs name one spec)."""
        return list(self.run.get("specs") or [str(self.run.get("spec", "upstream"))])  # type: ignore[call-overload]

    @property
    def primary(self) -> str:
        return self.specs[0]

    @property
    def rule_book(self) -> str:
        return str(self.run.get("rule_book", "?"))

    @property
    def statements(self) -> dict[str, str]:
        return dict(self.run.get("rules", {}))  # type: ignore[call-overload]

    def classes(self) -> Counter[CaseClass]:
        return Counter(case.case_class for case in self.cases)

    def to_json(self) -> dict[str, object]:
        return {"run": self.run, "kernels": self.kernels, "cases": [case.to_json() for case in self.cases]}

    @classmethod
    def from_json(cls, data: object, source: str = "results") -> Results:
        if not isinstance(data, dict) or not isinstance(data.get("run"), dict) or not isinstance(data.get("cases"), list):
            raise ResultsError(
                f"{source}: not a results document (needs run, kernels and cases); pass a results.json written by this suite"
            )
        data = upgrade(data)
        run: dict[str, object] = data["run"]
        primary = str((run.get("specs") or [run.get("spec", "upstream")])[0])  # type: ignore[index]
        try:
            cases = [CaseRecord.from_json(case, primary) for case in data["cases"]]
        except (TypeError, ValueError, AttributeError) as err:
            raise ResultsError(f"{source}: a case record is malformed ({err}); pass a results.json written by this suite") from None
        kernels = data.get("kernels")
        if not isinstance(kernels, list):
            raise ResultsError(f"{source}: no kernel list; pass a results.json written by this suite")
        for kernel in kernels:
            lacking = KERNEL_FIELDS - set(kernel) if isinstance(kernel, dict) else KERNEL_FIELDS
            if lacking:
                raise ResultsError(f"{source}: a kernel lacks {', '.join(sorted(lacking))}; pass a results.json written by this suite")
        return cls(run=run, kernels=kernels, cases=cases)


def load(path: Path) -> Results:
    """results.json, from the file or a run directory; a bad path or file is one ResultsError line."""
    target = path / "results.json" if path.is_dir() else path
    if not target.exists():
        raise ResultsError(f"{path}: no results.json; pass a run directory such as reports/out/latest or a results.json")
    try:
        data = json.loads(target.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{target}: not readable as JSON ({err}); pass a results.json written by this suite") from None
    return Results.from_json(data, str(target))
