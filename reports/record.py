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
from typing import Any, NotRequired, TypedDict, cast

from fixtures.arch import X86_64
from reports.jsonvalues import integer, mapping, planned_cases, texts


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
    def heading(self) -> str:
        """The title of the report section listing this class (str.title is str's own)."""
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
# The classes a stored record may carry with each verdict; anything else contradicts itself (a
# hand-edited or corrupted record) and is refused on load, never rendered.
CLASSES_OF_VERDICT = {
    Verdict.PASS: {CaseClass.PASS},
    Verdict.SKIP: {CaseClass.SKIP},
    Verdict.ERROR: {CaseClass.INFRASTRUCTURE},
    Verdict.FAIL: {CaseClass.REGRESSION, CaseClass.DOCUMENTATION, CaseClass.OTHER_SPEC},
}


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
    return _renamed_keys(data, legacy) if isinstance(data, dict) else data


def _renamed_keys(data: dict[str, object], legacy: dict[str, str]) -> dict[str, object]:
    if not legacy.keys() & data.keys():
        return data
    return {legacy.get(key, key): value for key, value in data.items() if key not in legacy or legacy[key] not in data}


def _upgrade_case(case: object) -> object:
    if isinstance(case, dict) and "kernel_info" in case:
        return {**case, "kernel_info": _renamed(case["kernel_info"], LEGACY_KERNEL_KEYS)}
    return case


def upgrade_run(run: dict[str, object]) -> dict[str, object]:
    """A run header (run.json, results.json's run) in the current vocabulary."""
    return _renamed_keys(run, LEGACY_RUN_KEYS)


def upgrade(data: dict[str, object]) -> dict[str, object]:
    """A results document (run, cases and, when it has them, kernels) in the current vocabulary: its
    kernels' and its cases' kernel_info "spec" is "origin", its run's "kernel_specs" "kernel_origins".
    Parts of the wrong shape are left as they are, for the caller to refuse."""
    upgraded = dict(data)
    if "run" in data:
        upgraded["run"] = _renamed(data["run"], LEGACY_RUN_KEYS)
    if isinstance(kernels := data.get("kernels"), list):
        upgraded["kernels"] = [_renamed(kernel, LEGACY_KERNEL_KEYS) for kernel in kernels]
    if isinstance(cases := data.get("cases"), list):
        upgraded["cases"] = [_upgrade_case(case) for case in cases]
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
        values["verdict"] = Verdict(cast(str, values["verdict"]))
        # The fields' values are as JSON gave them: the dataclass does not check their types at run
        # time (it never did); a missing or unknown argument is a TypeError the caller reports.
        record = cls(**cast(dict[str, Any], values))
        stored = data.get("class")
        record.case_class = CaseClass(cast(str, stored)) if stored else legacy_class(record, primary)
        if record.case_class not in CLASSES_OF_VERDICT[record.verdict]:
            raise ContradictionError(f"case {record.nodeid}: verdict {record.verdict} contradicts class {record.case_class}")
        return record


class ContradictionError(ValueError):
    """A record whose class its verdict does not allow (a FAIL classed pass, a PASS classed regression)."""


def legacy_class(record: CaseRecord, primary: str) -> CaseClass:
    """The class of a record written before classes were stored (results.json of 2026.11.0)."""
    if record.verdict is Verdict.FAIL:
        return failure_class(record.group, record.spec, primary)
    return OUTCOME_CLASS[record.verdict]


TOOL = "collapse-conformance"
RowKey = tuple[str, str, str]  # spec, test, parameters: one row of the matrix, kernels and repeats aside


@dataclass(frozen=True)
class Completeness:
    """What a run left undone, decided once, when its results are built (Results.__post_init__: on
    load, on folding the log, on merging); every report and the exit status read it, none works it out.

    The evidence: the header's finished mark (written when the session ends, so a killed run has
    none), the --kernel origins it planned, the cases it planned per kernel (planned_cases, node
    ids, when the run recorded them) and whether the log's last record was torn."""

    finished: bool
    kernels_not_run: tuple[str, ...] = ()  # planned kernels (origins, or names from the plan) with no record
    cases_not_run: tuple[tuple[str, int, int], ...] = ()  # (kernel name, planned cases not run, planned cases)
    not_run: frozenset[tuple[RowKey, str]] = frozenset()  # (row, kernel name) cells planned but without a record
    torn_records: int = 0  # the log's last record was cut mid-line: the writer was killed
    plan_known: bool = False  # the header lists the planned cases (planned_cases)

    @property
    def incomplete(self) -> bool:
        return not self.finished or bool(self.kernels_not_run or self.cases_not_run or self.torn_records)

    def gaps(self) -> list[str]:
        """What is missing, one short phrase each, most telling first (empty for a complete run)."""
        found = [f"{_count(len(self.kernels_not_run), 'planned kernel')} not run ({', '.join(self.kernels_not_run)})"] * bool(
            self.kernels_not_run
        )
        found += [f"{missing} of {planned} planned cases not run on {name}" for name, missing, planned in self.cases_not_run]
        found += [f"{_count(self.torn_records, 'torn record')} in results.jsonl (the writer was killed mid-record)"] * bool(
            self.torn_records
        )
        found += ["no finished mark (the run was killed before its end)"] * (not self.finished)
        if self.incomplete and not self.plan_known:
            found.append("no plan recorded: cases planned but not run cannot be counted")
        return found


def _count(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _shape(nodeid: str, label: str, name: str) -> str:
    """A node id without what names its kernel (the '@NAME' xdist group, the 'LABEL-' the case id
    opens with), so that one case's node ids on two kernels compare equal."""
    if nodeid.endswith(f"@{name}"):
        nodeid = nodeid[: -len(name) - 1]
    return nodeid.replace(f"[{label}-", "[", 1)


def completeness(run: dict[str, object], kernels: list[dict[str, object]], cases: list[CaseRecord], torn: int) -> Completeness:
    """The run's Completeness from its header, its kernels, its records and the log's torn tail."""
    names = {str(k["name"]): str(k["label"]) for k in kernels}
    ran_origins = {str(k.get("origin")) for k in kernels}
    missing_kernels = [o for o in texts(run.get("kernel_origins")) if o not in ran_origins]
    plan = planned_cases(run)
    recorded: dict[str, set[str]] = {}
    rows: dict[str, RowKey] = {}
    for case in cases:
        recorded.setdefault(case.kernel, set()).add(case.nodeid)
        rows[_shape(case.nodeid, str(case.kernel_info.get("label", names.get(case.kernel, ""))), case.kernel)] = (
            case.spec,
            case.test,
            case.params_id,
        )
    per_kernel, cells = [], set()
    for name, nodeids in plan.items():
        absent = [n for n in dict.fromkeys(nodeids) if n not in recorded.get(name, set())]
        if absent:
            per_kernel.append((name, len(absent), len(set(nodeids))))
        label = names.get(name, name.rsplit("-", 1)[0])  # a kernel's name is LABEL-BUILDID (vm.kernels.Kernel.name)
        cells |= {(rows[shape], name) for shape in (_shape(n, label, name) for n in absent) if shape in rows}
    return Completeness(
        finished=bool(run.get("finished")),
        kernels_not_run=tuple(missing_kernels),
        cases_not_run=tuple(per_kernel),
        not_run=frozenset(cells),
        torn_records=torn,
        plan_known=bool(plan),
    )


# Runs recorded before kernels had an architecture ran x86-64 guests only.
RECORDED_BEFORE_ARCHITECTURES = X86_64.name


def architecture(kernel: dict[str, object]) -> str:
    """The kernel's architecture (its Arch name: x86_64, arm64), as KCIDB's build architecture."""
    return str(kernel.get("arch") or RECORDED_BEFORE_ARCHITECTURES)


def size_text(size: int) -> str:
    """4096 -> 4K, 33554432 -> 32M."""
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return str(size)


def platform_text(kernel: dict[str, object]) -> str:
    """'arm64, 16K pages': the architecture and the page size the guest reported at boot (the image's
    or config's before a boot; none in records older than page sizes)."""
    page = kernel.get("page_size")
    return f"{architecture(kernel)}, {size_text(page)} pages" if isinstance(page, int) and page > 0 else architecture(kernel)


def display_names(kernels: list[dict[str, object]]) -> dict[str, str]:
    """Kernel name -> the name its files and columns carry: its label, unique among KERNELS; where
    labels clash (two builds of bookworm, base and patched trees of one release) the label plus
    the first digits of the build id that tell them apart."""
    labels = Counter(str(k["label"]) for k in kernels)
    shown = {}
    for kernel in kernels:
        label, build = str(kernel["label"]), str(kernel["build_id"])
        clashing = [str(k["build_id"]) for k in kernels if str(k["label"]) == label and k is not kernel]
        digits = next((n for n in range(6, len(build)) if all(not other.startswith(build[:n]) for other in clashing)), len(build))
        shown[str(kernel["name"])] = label if labels[label] == 1 else f"{label}-{build[:digits]}"
    if len(set(shown.values())) < len(shown):  # one image twice under one label: only the full names differ
        return {name: name for name in shown}
    return shown


class ResultsDocument(TypedDict):
    """results.json as Results.to_json writes it (Results.from_json reads any JSON and checks its shape)."""

    run: dict[str, object]
    kernels: list[dict[str, object]]  # the kernels' descriptions (vm.kernels.Kernel.describe, and name, accel, boot_s)
    cases: list[dict[str, object]]  # CaseRecord.to_json
    torn_records: NotRequired[int]


def specs_of(run: dict[str, object]) -> list[str]:
    """A run header's specs, the fully checked one first (older runs name one spec)."""
    return texts(run.get("specs")) or [str(run.get("spec", "upstream"))]


@dataclass
class Results:
    """A run: its header, its kernels (descriptions, in --kernel order) and its case records, and
    what it left undone (completeness: decided here, once, from the header, the records and
    TORN_RECORDS, the log's torn tail that folding found)."""

    run: dict[str, object]
    kernels: list[dict[str, object]]
    cases: list[CaseRecord] = field(default_factory=list)
    torn_records: int = 0
    completeness: Completeness = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        inherited = self.run.get("torn_records")  # a merged run's header: the torn records of the runs merged
        torn = self.torn_records + (inherited if isinstance(inherited, int) else 0)
        self.completeness = completeness(self.run, self.kernels, self.cases, torn)

    @property
    def specs(self) -> list[str]:
        """The run's specs, the fully checked one first (older runs name one spec)."""
        return specs_of(self.run)

    @property
    def primary(self) -> str:
        return self.specs[0]

    @property
    def rule_book(self) -> str:
        return str(self.run.get("rule_book", "?"))

    @property
    def statements(self) -> dict[str, str]:
        return {str(rule): str(statement) for rule, statement in mapping(self.run.get("rules")).items()}

    @property
    def repeat(self) -> int:
        """How many times each case ran (--repeat; 1 for a run that does not say)."""
        return integer(self.run, "repeat", 1)

    @property
    def kernel_origins(self) -> list[str]:
        """The --kernel values the run planned, in order."""
        return texts(self.run.get("kernel_origins"))

    @property
    def tool(self) -> str:
        """The tool and the commit of the checkout that ran the suite (the header's tool_commit)."""
        commit = self.run.get("tool_commit")
        return f"{TOOL} {str(commit)[:12]}" if commit else f"{TOOL} (commit not recorded)"

    @property
    def display_names(self) -> dict[str, str]:
        return display_names(self.kernels)

    def classes(self) -> Counter[CaseClass]:
        return Counter(case.case_class for case in self.cases)

    def to_json(self) -> ResultsDocument:
        data: ResultsDocument = {"run": self.run, "kernels": self.kernels, "cases": [case.to_json() for case in self.cases]}
        if self.torn_records:
            data["torn_records"] = self.torn_records  # results.json alone must tell what the log told
        return data

    @classmethod
    def from_json(cls, data: object, source: str = "results", torn_records: int = 0) -> Results:
        document = upgrade(data) if isinstance(data, dict) else {}
        run, records = document.get("run"), document.get("cases")
        if not isinstance(run, dict) or not isinstance(records, list):
            raise ResultsError(
                f"{source}: not a results document (needs run, kernels and cases); pass a results.json written by this suite"
            )
        primary = specs_of(run)[0]
        try:
            cases = [CaseRecord.from_json(case, primary) for case in records]
        except ContradictionError as err:
            raise ResultsError(f"{source}: {err}; fix that record (or delete it and rerun the case with --resume)") from None
        except (TypeError, ValueError, AttributeError) as err:
            raise ResultsError(f"{source}: a case record is malformed ({err}); pass a results.json written by this suite") from None
        kernels = document.get("kernels")
        if not isinstance(kernels, list):
            raise ResultsError(f"{source}: no kernel list; pass a results.json written by this suite")
        for kernel in kernels:
            lacking = KERNEL_FIELDS - set(kernel) if isinstance(kernel, dict) else KERNEL_FIELDS
            if lacking:
                raise ResultsError(f"{source}: a kernel lacks {', '.join(sorted(lacking))}; pass a results.json written by this suite")
        torn = document.get("torn_records", 0)
        return cls(run=run, kernels=kernels, cases=cases, torn_records=max(torn_records, torn if isinstance(torn, int) else 0))


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


def presence_of(kernel: dict[str, object]) -> dict[str, dict[str, object]]:
    """The kernel's change set as results.json records it: change key -> present, basis, evidence."""
    changes = kernel.get("changes")
    return {str(k): v for k, v in changes.items() if isinstance(v, dict)} if isinstance(changes, dict) else {}
