"""Load the rule book (rules.toml), plan cases from it, and judge observations against it.

Pure logic: no VM, no kernel. Unit-tested in suites/unit/test_rulebook.py.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from fixtures.observation import CallOutcome, Evidence, Observation
from vm.version import Version, parse_version

EMPTY: Mapping[str, str] = MappingProxyType({})  # no kernel config known

RULES_FILE = Path(__file__).with_name("rules.toml")
# upstream: the merged semantics, version-aware. proposal: the linux-mm proposal as written (the seed
# message). documented: what the man pages and transhuge.rst say. The last two inherit upstream
# wherever they say nothing; their own rules carry `specs = [...]`.
SPECS = ("upstream", "proposal", "documented")
DEFAULT_SPECS = ("upstream", "documented")


class Target(Protocol):
    """What planning needs of a kernel: vm.kernels.Kernel, or a tree not yet built (workflows.bisect)."""

    @property
    def name(self) -> str: ...  # unique among the run's kernels

    @property
    def label(self) -> str: ...  # the case ids start with it

    @property
    def version(self) -> Version: ...

    @property
    def config(self) -> dict[str, str]: ...  # empty: unknown, every requirement assumed met


@dataclass(frozen=True)
class VersionRange:
    """'>=6.1,<6.12' style bounds; empty means every version."""

    text: str

    def __contains__(self, version: Version) -> bool:
        for clause in filter(None, (c.strip() for c in self.text.split(","))):
            for op in (">=", "<=", ">", "<"):
                if clause.startswith(op):
                    bound = parse_version(clause[len(op) :].strip())
                    break
            else:
                raise ValueError(f"bad version clause {clause!r} in {self.text!r}")
            ok = {
                ">=": version >= bound,
                "<=": version <= bound,
                ">": version > bound,
                "<": version < bound,
            }[op]
            if not ok:
                return False
        return True


def bound_versions(text: str) -> tuple[str, ...]:
    """The version numbers a 'versions' text names, as written: '>=6.1,<6.18' -> ('6.1', '6.18')."""
    return tuple(re.sub(r"^[<>]=?", "", c.strip()).strip() for c in text.split(",") if c.strip())


COMMIT = re.compile(r"[0-9a-f]{12,40}")
RELEASE = re.compile(r"v\d+\.\d+(\.\d+)?")


@dataclass(frozen=True)
class Change:
    """Why a version bound sits where it does: an upstream commit and the first release tag that
    contains it, or, where no commit could be pinned, an observation on a named kernel build."""

    key: str
    commit: str | None = None
    release: str | None = None
    title: str | None = None
    observed: str | None = None
    read: str | None = None  # where the change was read: release, file:line

    @property
    def label(self) -> str:
        if self.commit:
            return f"{self.commit[:12]}, {self.release}"
        return "observed"


def parse_change(key: str, raw: dict[str, str]) -> Change:
    """A [change.KEY] table: `commit` + `release` + `title`, or `observed`; never both, never neither."""
    unknown = set(raw) - {"commit", "release", "title", "observed", "read"}
    if unknown:
        raise ValueError(f"change {key}: unknown keys {sorted(unknown)}")
    change = Change(key=key, **raw)
    if change.observed is not None:
        if change.commit or change.release or not change.observed.strip():
            raise ValueError(f"change {key}: an observation names the build it was seen on, and no commit")
        return change
    if not (change.commit and COMMIT.fullmatch(change.commit)):
        raise ValueError(f"change {key}: commit must be 12 to 40 lowercase hex digits, got {change.commit!r}")
    if not (change.release and RELEASE.fullmatch(change.release)):
        raise ValueError(f"change {key}: release must be the first tag that contains it (vX.Y), got {change.release!r}")
    if not change.title:
        raise ValueError(f"change {key}: a commit needs its title")
    return change


def parse_bounds(rule_id: str, versions: str, raw: dict[str, str], changes: dict[str, Change]) -> dict[str, Change]:
    """Each version in VERSIONS mapped to the change that puts the bound there; a commit's release
    must be that version (v6.13 for '6.13'), so a bound cannot drift from its source."""
    named = set(bound_versions(versions))
    if named != set(raw):
        raise ValueError(f"rule {rule_id}: bounds {sorted(raw)} do not match the versions {versions!r}")
    bounds = {}
    for version, key in raw.items():
        if key not in changes:
            raise ValueError(f"rule {rule_id}: bound {version} names no [change.{key}]")
        change = changes[key]
        if change.release and parse_version(change.release[1:]) != parse_version(version):
            raise ValueError(f"rule {rule_id}: bound {version} cites {key}, first released in {change.release}")
        bounds[version] = change
    return bounds


@dataclass(frozen=True)
class Rule:
    id: str
    test: str
    group: str
    statement: str
    source: str
    versions: VersionRange
    when: dict[str, tuple[str, ...]]
    expect: dict[str, object]
    specs: tuple[str, ...] = SPECS
    skip: str | None = None
    bounds: dict[str, Change] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)  # kernel options the rule holds under: y (y or m) | n

    def matches(self, params: dict[str, str]) -> bool:
        return all(params.get(dim) in values for dim, values in self.when.items())

    def holds_under(self, config: Mapping[str, str]) -> bool:
        """A rule with a config condition holds only for a kernel whose config is known to meet it."""
        if not self.config:
            return True
        return bool(config) and all((config.get(opt) in ("y", "m")) == (want == "y") for opt, want in self.config.items())


@dataclass(frozen=True)
class TestDef:
    name: str
    description: str
    requires: tuple[str, ...]
    dimensions: dict[str, tuple[str, ...]]

    def grid(self) -> list[dict[str, str]]:
        names = list(self.dimensions)
        return [dict(zip(names, values, strict=False)) for values in itertools.product(*self.dimensions.values())]


@dataclass(frozen=True)
class RuleBook:
    version: str
    invariants: dict[str, str]
    tests: dict[str, TestDef]
    rules: tuple[Rule, ...]
    changes: dict[str, Change] = field(default_factory=dict)

    def decide(self, test: str, params: dict[str, str], version: Version, spec: str, config: Mapping[str, str] = EMPTY) -> Rule | None:
        """The first rule of TEST that matches PARAMS, holds at VERSION (and under CONFIG) and belongs to SPEC."""
        for rule in self.rules:
            if rule.test == test and spec in rule.specs and version in rule.versions and rule.matches(params) and rule.holds_under(config):
                return rule
        return None


@cache
def load(path: Path = RULES_FILE) -> RuleBook:
    return parse(tomllib.loads(path.read_text()))


def parse(data: dict[str, Any]) -> RuleBook:
    """The rule book from rules.toml's parsed data (unit tests feed it variations)."""
    changes = {key: parse_change(key, raw) for key, raw in data.get("change", {}).items()}
    tests = {
        name: TestDef(
            name=name,
            description=body["description"],
            requires=tuple(body.get("requires", ())),
            dimensions={dim: tuple(values) for dim, values in body["dimensions"].items()},
        )
        for name, body in data["test"].items()
    }
    every = data.get("every_test", {}).get("rule", [])
    rules = [parse_rule(raw, tests, changes) for raw in with_every_test_rules(data["rule"], every, tests)]
    return RuleBook(version=data["version"], invariants=data["invariants"], tests=tests, rules=tuple(rules), changes=changes)


RULE_KEYS = frozenset({"id", "test", "group", "statement", "source", "versions", "bounds", "when", "config", "expect", "specs", "skip"})


def with_every_test_rules(rules: list[dict[str, Any]], every: list[dict[str, Any]], tests: dict[str, TestDef]) -> list[dict[str, Any]]:
    """RULES in file order, with a copy of each rule of EVERY ([[every_test.rule]]) for each test put
    just before that test's first rule, unless the test has a rule of that id itself."""
    for raw in every:
        if "test" in raw or "when" in raw:
            raise ValueError(f"every_test rule {raw.get('id')}: names no test and no 'when' (it holds for every grid)")
    own: dict[str, set[str]] = {test: set() for test in tests}
    for raw in rules:
        own.setdefault(raw.get("test", ""), set()).add(raw.get("id", ""))
    merged: list[dict[str, Any]] = []
    started: set[str] = set()
    for raw in rules:
        test = raw.get("test", "")
        if test in tests and test not in started:
            started.add(test)
            merged += [{**default, "test": test} for default in every if default["id"] not in own[test]]
        merged.append(raw)
    merged += [{**default, "test": test} for test in tests if test not in started for default in every]
    return merged


def parse_rule(raw: dict[str, Any], tests: dict[str, TestDef], changes: dict[str, Change]) -> Rule:
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise ValueError(f"rule {raw.get('id')}: unknown keys {sorted(unknown)}")
    if raw["test"] not in tests:
        raise ValueError(f"rule {raw['id']}: unknown test {raw['test']!r}")
    dims = tests[raw["test"]].dimensions
    when = {dim: tuple(values) for dim, values in raw.get("when", {}).items()}
    for dim, values in when.items():
        if dim not in dims or not set(values) <= set(dims[dim]):
            raise ValueError(f"rule {raw['id']}: 'when' names {dim}={values}, not in test {raw['test']}")
    if not set(raw.get("specs", SPECS)) <= set(SPECS):
        raise ValueError(f"rule {raw['id']}: unknown spec in {raw['specs']}; specs are {', '.join(SPECS)}")
    config = dict(raw.get("config", {}))
    if any(value not in ("y", "n") for value in config.values()):
        raise ValueError(f"rule {raw['id']}: 'config' values are y or n, got {config}")
    if ("expect" in raw) == ("skip" in raw):
        raise ValueError(f"rule {raw['id']}: needs exactly one of 'expect' or 'skip'")
    return Rule(
        id=raw["id"],
        test=raw["test"],
        group=raw["group"],
        statement=raw["statement"],
        source=raw["source"],
        versions=VersionRange(raw.get("versions", "")),
        when=when,
        expect=raw.get("expect", {}),
        specs=tuple(raw.get("specs", SPECS)),
        skip=raw.get("skip"),
        bounds=parse_bounds(raw["id"], raw.get("versions", ""), raw.get("bounds", {}), changes),
        config=config,
    )


# ------------------------------------------------------------------ cases


@dataclass(frozen=True)
class UnbuiltKernel:
    """A Target known only by its version and config: a kernel tree not built yet (workflows.bisect checks
    a selection before building), or a kernel in the unit tests."""

    name: str
    label: str
    version: Version
    config: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Case:
    """One planned case: a test, its parameters, a kernel, and what the rule book expects."""

    test: str
    params: dict[str, str]
    kernel: Target  # passed whole, from --kernel to the VM that boots it
    spec: str
    rule: str | None
    group: str
    expect: dict[str, object] = field(default_factory=dict)
    skip: str | None = None
    repeat: int = 1

    @property
    def params_id(self) -> str:
        return "-".join(self.params.values())

    @property
    def id(self) -> str:
        return f"{self.kernel.label}-{self.params_id}" + ("" if self.spec == SPECS[0] else f"-{self.spec}")


def plan(book: RuleBook, test: str, kernel: Target, spec: str, beside: str | None = None) -> list[Case]:
    """Every case of TEST on one kernel, each with its expectation or its reason to skip.

    With BESIDE (the run's first spec), SPEC is checked beside it: only the cases that one of
    SPEC's own rules decides are planned, since everywhere else SPEC inherits BESIDE's verdict.
    """
    definition = book.tests[test]
    config, version = kernel.config, kernel.version
    missing = [opt for opt in definition.requires if config and config.get(opt) not in ("y", "m")]
    cases = []
    for params in definition.grid():
        rule = book.decide(test, params, version, spec, config)
        if beside is not None and (rule is None or beside in rule.specs):
            continue
        if missing:
            skip: str | None = f"kernel lacks CONFIG_{', CONFIG_'.join(missing)}"
        elif rule is None:
            unknown = "" if config else " (kernel config unknown)"
            skip = f"no rule of the {spec} spec covers this case at {'.'.join(map(str, version))}{unknown}"
        else:
            skip = rule.skip
        cases.append(
            Case(
                test=test,
                params=params,
                kernel=kernel,
                spec=spec,
                rule=rule.id if rule else None,
                group=rule.group if rule else "unruled",
                expect=dict(rule.expect) if rule else {},
                skip=skip,
            )
        )
    return cases


# ------------------------------------------------------------------ judging


def observed_result(caller: str, call: CallOutcome, length: int) -> str:
    """'ok', an errno name, or 'ret=N' for a success value the rules never expect."""
    if call.ret == -1:
        return str(call.errno)
    if (caller == "madvise" and call.ret == 0) or (caller != "madvise" and call.ret == length):
        return "ok"
    return f"ret={call.ret}"


def vmflags_change(before: Sequence[str], after: Sequence[str]) -> str:
    """'unchanged', or the flags added and removed, e.g. '+hg' or '+nh -hg'."""
    added = [f"+{f}" for f in after if f not in before]
    removed = [f"-{f}" for f in before if f not in after]
    return " ".join(added + removed) or "unchanged"


def summarize(observed: Observation) -> dict[str, object]:
    """The observation reduced to the quantities the rules speak of."""
    before, after, evidence = observed.before, observed.after, observed.evidence
    result = observed_result(observed.caller, observed.call, observed.length)
    return {
        "result": result,
        "pmd_mapped": after.pmd_mapped,
        "blocks": after.blocks,
        "data": "intact" if observed.data_intact else "corrupted",
        "vmflags": vmflags_change(before.vmflags, after.vmflags),
        "views": "agree" if after.views_agree else f"smaps {after.pmd_kb} kB vs kpageflags {after.thp_pages} THP pages",
        **_allocation(observed, result),
        **_persistence(evidence),
        **({"thp_disable": "kept" if evidence.thp_disable_inherited else "dropped"} if evidence.thp_disable_inherited is not None else {}),
        **(
            {"refused": result != "ok", "guards": "fault" if evidence.guards_fault else "lost"} if evidence.guards_fault is not None else {}
        ),
        **({"same_folio": evidence.same_folio} if evidence.same_folio is not None else {}),
    }


def _allocation(observed: Observation, result: str) -> dict[str, object]:
    """No free 2 MiB block (E2): what the call got, whether its task entered direct compaction or
    reclaim (taskstats) and vmstat counted a stall, and whether the prober's faults did."""
    pressure = observed.evidence.pressure
    if pressure is None:
        return {}
    vmstat = observed.vmstat
    return {
        "outcome": allocation_outcome(result, observed.after.pmd_mapped),
        "fault_thp": pressure.fault_thp,
        "caller_stalled": stalled(observed.call.delays or {}),
        "fault_stalled": stalled(pressure.fault_delays),
        "stalls_counted": vmstat.get("compact_stall", 0) + vmstat.get("allocstall", 0) > 0,
    }


def allocation_outcome(result: str, pmd_mapped: bool) -> str:
    """'THP or ENOMEM' when the call got one of the two E2 allows, else what it got."""
    if (result == "ok" and pmd_mapped) or (result == "ENOMEM" and not pmd_mapped):
        return "THP or ENOMEM"
    return f"{result}, {'THP' if pmd_mapped else 'no THP'}"


def stalled(delays: Mapping[str, int]) -> bool | str:
    """Did the task enter direct compaction or reclaim: taskstats compact (v11+) and freepages counts."""
    if "compact_count" not in delays:
        return "unknown (taskstats has no compact fields)"
    return delays["compact_count"] + delays["freepages_count"] > 0


def _persistence(evidence: Evidence) -> dict[str, object]:
    watched = evidence.persistence
    if watched is None:
        return {}
    return {"split": watched.split, "recollapsed": watched.recollapsed}


INVARIANT_EXPECT = {"data": "intact", "vmflags": "unchanged", "views": "agree"}


def judge(expect: dict[str, object], summary: dict[str, object]) -> list[tuple[str, object, object]]:
    """Mismatches (field, expected, observed) between the invariants, overridden by the rule's expectation, and SUMMARY."""
    wanted = {**INVARIANT_EXPECT, **expect}
    return [(key, value, summary.get(key)) for key, value in wanted.items() if summary.get(key) != value]


def describe(values: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


def failure_line(mismatches: list[tuple[str, object, object]]) -> str:
    expected = describe({k: e for k, e, _ in mismatches})
    observed = describe({k: o for k, _, o in mismatches})
    return f"expected {expected}; observed {observed}"


# ------------------------------------------------------------------ documentation


def markdown_table(book: RuleBook) -> str:
    """The rule book as the README shows it: one row per rule id (X0 repeats per grid, once here)."""
    rows: dict[str, Rule] = {}
    tests: dict[str, list[str]] = {}
    for rule in book.rules:
        rows.setdefault(rule.id, rule)
        tests.setdefault(rule.id, []).append(rule.test)
    lines = ["| id | group | statement | versions | spec | grids |", "|---|---|---|---|---|---|"]
    for rule_id, rule in rows.items():
        specs = "all" if set(rule.specs) == set(SPECS) else ", ".join(rule.specs)
        outcome = f" (SKIP: {rule.skip})" if rule.skip else ""
        if rule.config:
            outcome += " [config: " + ", ".join(f"{opt}={want}" for opt, want in rule.config.items()) + "]"
        grids = ", ".join(dict.fromkeys(tests[rule_id]))
        lines.append(f"| {rule_id} | {rule.group} | {rule.statement}{outcome} | {versions_cell(rule)} | {specs} | {grids} |")
    lines += ["", "Each version bound and what puts it there (`[change.*]` in rules.toml):", ""]
    lines += ["| change | commit | first release | title, or what was observed | read at |", "|---|---|---|---|---|"]
    for change in book.changes.values():
        what = change.title if change.commit else f"observed: {change.observed}"
        lines.append(f"| {change.key} | {change.commit or '-'} | {change.release or '-'} | {what} | {change.read or '-'} |")
    return "\n".join(lines) + "\n"


def versions_cell(rule: Rule) -> str:
    """'>=6.1 (7d8faaf15545, v6.1), <6.18 (observed)': each clause with the change behind it."""
    if not rule.versions.text:
        return "all"
    clauses = [c.strip() for c in rule.versions.text.split(",") if c.strip()]
    return ", ".join(
        f"{clause} ({rule.bounds[version].label})" for clause, version in zip(clauses, bound_versions(rule.versions.text), strict=True)
    )


README = RULES_FILE.parent.parent / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- rule table: python -m suites.rulebook --update-readme -->\n", "<!-- end of rule table -->\n"


def readme_with_table(readme: str, table: str) -> str:
    head, _, rest = readme.partition(TABLE_BEGIN)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_BEGIN}{table}{TABLE_END}{tail}"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update-readme"]:
        README.write_text(readme_with_table(README.read_text(), markdown_table(load())))
    else:
        print(markdown_table(load()), end="")
