"""Load the rule book (rules.toml), plan cases from it, and judge observations against it.

Pure logic: no VM, no kernel. Unit-tested in suites/unit/test_rulebook.py.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from fixtures.geometry import Geometry
from fixtures.observation import INVARIANT_EXPECT, CallOutcome, Evidence, Observation, Snapshot, made_thp
from vm.presence import Change, KernelFacts, Presence
from vm.presence import decide as decide_presence
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

    @property
    def facts(self) -> KernelFacts: ...  # what deciding a change's presence reads of it

    @property
    def presence(self) -> Mapping[str, Presence]: ...  # decided once per kernel; empty: not yet


@dataclass(frozen=True)
class VersionRange:
    """'>=6.1,<6.12' style bounds ('has the 6.1 change, lacks the 6.12 one'); empty means every kernel."""

    text: str


def bound_versions(text: str) -> tuple[str, ...]:
    """The version numbers a 'versions' text names, as written: '>=6.1,<6.18' -> ('6.1', '6.18')."""
    return tuple(re.sub(r"^[<>]=?", "", c.strip()).strip() for c in text.split(",") if c.strip())


COMMIT = re.compile(r"[0-9a-f]{12,40}")
RELEASE = re.compile(r"v\d+\.\d+")
STABLE = re.compile(r"\d+\.\d+\.\d+")
CHANGE_KEYS = frozenset({"commit", "release", "title", "stable", "stable_lines", "stable_read", "read"})
LINE = re.compile(r"\d+\.\d+")


def parse_change(key: str, raw: dict[str, Any]) -> Change:
    """A [change.KEY] table: the mainline `commit`, its first `release` (vX.Y) and `title`, the
    `stable` releases that carry it (an empty list says none), the `stable_lines` searched for a
    backport (['all'] for a feature, which stable never takes) and `stable_read`: where that was
    checked. A bound that names less cannot say whether a stable or distribution kernel has it."""
    unknown = set(raw) - CHANGE_KEYS
    if unknown:
        raise ValueError(f"change {key}: unknown keys {sorted(unknown)}")
    commit, release, title = raw.get("commit", ""), raw.get("release", ""), raw.get("title", "")
    if not COMMIT.fullmatch(commit):
        raise ValueError(f"change {key}: commit must be the mainline commit, 12 to 40 lowercase hex digits, got {commit!r}")
    if not RELEASE.fullmatch(release):
        raise ValueError(f"change {key}: release must be the first mainline tag that contains it (vX.Y), got {release!r}")
    if not title:
        raise ValueError(f"change {key}: a commit needs its title (the changelog of a Debian kernel is searched for it)")
    stable = raw.get("stable")
    if not isinstance(stable, list) or not all(isinstance(v, str) and STABLE.fullmatch(v) for v in stable):
        raise ValueError(f"change {key}: stable must list the stable releases that carry it (X.Y.Z), or be [] for none")
    if not str(raw.get("stable_read", "")).strip():
        raise ValueError(f"change {key}: stable_read must say where the stable releases (or their absence) were checked")
    lines = raw.get("stable_lines")
    if lines != ["all"] and not (isinstance(lines, list) and all(isinstance(v, str) and LINE.fullmatch(v) for v in lines)):
        raise ValueError(
            f"change {key}: stable_lines must list the stable lines searched for a backport (X.Y), or be ['all'] for a feature"
        )
    return Change(
        key=key,
        commit=commit,
        release=release,
        title=title,
        stable=tuple(sorted(parse_version(v) for v in stable)),
        stable_read=raw["stable_read"],
        read=raw.get("read", ""),
        stable_lines=None if lines == ["all"] else frozenset(parse_version(v)[:2] for v in lines),
    )


def parse_bounds(rule_id: str, versions: str, raw: dict[str, str], changes: dict[str, Change]) -> dict[str, Change]:
    """Each version in VERSIONS mapped to the change that puts the bound there; a change's mainline
    release must be that version (v6.13 for '6.13'), so a bound cannot drift from its source.
    Only '>=' (has the change) and '<' (lacks it) bound a rule."""
    for clause in filter(None, (c.strip() for c in versions.split(","))):
        if not clause.startswith((">=", "<")) or clause.startswith("<="):
            raise ValueError(f"rule {rule_id}: {clause!r}: bounds are '>=X.Y' (has the change) or '<X.Y' (lacks it)")
    named = set(bound_versions(versions))
    if named != set(raw):
        raise ValueError(f"rule {rule_id}: bounds {sorted(raw)} do not match the versions {versions!r}")
    bounds = {}
    for version, key in raw.items():
        if key not in changes:
            raise ValueError(f"rule {rule_id}: bound {version} names no [change.{key}]")
        change = changes[key]
        if change.mainline != parse_version(version):
            raise ValueError(f"rule {rule_id}: bound {version} cites {key}, first released in {change.release}")
        bounds[version] = change
    return bounds


class Undecided(Exception):
    """The rule that matches a case is bounded by a change this kernel cannot be told to have or lack."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


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
    covers: tuple[str, ...] = ()  # the scan_result values and gates its cases exercise (suites/coverage.toml)

    def matches(self, params: dict[str, str]) -> bool:
        return all(params.get(dim) in values for dim, values in self.when.items())

    def holds_for(self, changes: Mapping[str, bool | None]) -> bool:
        """'>=V' holds for a kernel that has the change bounding V, '<V' for one that lacks it: on
        a stable or distribution kernel that is its backports, not its version. A change nobody can
        tell of on this kernel (None) raises Undecided: no later rule may stand in for this one."""
        for has, change in self.clauses:
            present = changes[change.key]
            if present is None:
                raise Undecided(change.key)
            if present != has:
                return False
        return True

    @cached_property
    def clauses(self) -> list[tuple[bool, Change]]:
        """(has: '>=' rather than '<', the change) for each clause of VERSIONS, in order; parsed once
        per rule, since every case's decision reads it."""
        texts = [c.strip() for c in self.versions.text.split(",") if c.strip()]
        return [(text.startswith(">="), self.bounds[v]) for text, v in zip(texts, bound_versions(self.versions.text), strict=True)]

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

    def decide(
        self, test: str, params: dict[str, str], changes: Mapping[str, bool | None], spec: str, config: Mapping[str, str] = EMPTY
    ) -> Rule | None:
        """The first rule of TEST that matches PARAMS, holds for a kernel with CHANGES (change key ->
        has it; see presence()) and under CONFIG, and belongs to SPEC."""
        for rule in self.rules:
            if rule.test == test and spec in rule.specs and rule.matches(params) and rule.holds_under(config) and rule.holds_for(changes):
                return rule
        return None

    def presence(self, kernel: KernelFacts, assumed: Mapping[str, bool] = MappingProxyType({})) -> dict[str, Presence]:
        """Each change of the book present or absent in KERNEL, and how that was decided."""
        return {key: decide_presence(change, kernel, assumed) for key, change in self.changes.items()}

    def at_version(self, version: Version) -> dict[str, bool | None]:
        """The changes a kernel known only by its version has (its mainline and listed stable releases)."""
        return {key: p.present for key, p in self.presence(KernelFacts(version)).items()}


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


RULE_KEYS = frozenset(
    {"id", "test", "group", "statement", "source", "versions", "bounds", "when", "config", "expect", "specs", "skip", "covers"}
)
COVERED_NAME = re.compile(r"SCAN_[A-Z_]+|gate:[A-Za-z0-9_.-]+")


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
    covers = raw.get("covers", [])
    if not isinstance(covers, list) or not all(isinstance(name, str) and COVERED_NAME.fullmatch(name) for name in covers):
        raise ValueError(f"rule {raw['id']}: 'covers' lists scan_result values (SCAN_...) and gates (gate:...), got {covers!r}")
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
        covers=tuple(covers),
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
    tree: Path | None = None  # a kernel tree: its git history decides the changes it has
    presence: Mapping[str, Presence] = field(default_factory=dict, compare=False)
    prerelease: bool = False  # an -rc tree

    @property
    def facts(self) -> KernelFacts:
        return KernelFacts(self.version, prerelease=self.prerelease, tree=self.tree)


def kernel_presence(book: RuleBook, kernel: Target) -> Mapping[str, Presence]:
    """Each change of the book in KERNEL: as decided for the kernel, else decided now from its facts."""
    return kernel.presence if set(book.changes) <= set(kernel.presence) else book.presence(kernel.facts)


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
    presence = kernel_presence(book, kernel)
    changes = {key: found.present for key, found in presence.items()}
    missing = [opt for opt in definition.requires if config and config.get(opt) not in ("y", "m")]
    cases = []
    for params in definition.grid():
        undecided = None
        try:
            rule = book.decide(test, params, changes, spec, config)
        except Undecided as cannot_tell:  # the deciding rule's bound cannot be told on this kernel: not judged
            rule, undecided = None, presence[cannot_tell.key]
        if beside is not None and (rule is None or beside in rule.specs):
            continue
        if missing:
            skip: str | None = f"kernel lacks CONFIG_{', CONFIG_'.join(missing)}"
        elif undecided is not None:
            skip = f"whether this kernel has {undecided.key} cannot be told: {undecided.evidence}"
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


def mlock_change(before: bool | None, after: bool | None) -> str:
    """'kept' when the block's first folio is mlocked after the call as it was before (or a side has no
    page there), else 'lost' or 'gained'."""
    if before is None or after is None or before == after:
        return "kept"
    return "lost" if before else "gained"


def node_change(before: Snapshot, after: Snapshot) -> str:
    """'majority' when a THP after the call is on the node that held most of the block before (the
    collapse allocates there, mempolicy or not), or there is no THP or no node to compare; else where it is."""
    if not after.pmd_mapped or before.majority_node is None or after.first_node in (None, before.majority_node):
        return "majority"
    return f"node {after.first_node}, majority {before.majority_node}"


def folio_state(before: Snapshot, after: Snapshot) -> str:
    """'sound' unless the call made a THP in the block that is not uptodate, or a clean one of shared
    memory (shmem, memfd, tmpfs), which reclaim would drop with its data; else what it lacks."""
    if not made_thp(before, after) or after.uptodate is None:
        return "sound"
    lacks = [name for name, held in (("uptodate", after.uptodate), ("dirty", after.dirty or not after.shared_memory)) if not held]
    return " and ".join(f"not {name}" for name in lacks) or "sound"


def soft_dirty_state(before: Snapshot, after: Snapshot, pages: int) -> str:
    """'sound' unless a THP the call made breaks the soft-dirty rule of its kind: an anonymous one
    reads soft-dirty on every page (its PMD is made dirty, and pmd_mkdirty() sets the soft-dirty bit),
    a page-cache one only through its VMA's VM_SOFTDIRTY ('sd'; the PMD is mapped clean)."""
    if not made_thp(before, after) or not pages or after.soft_dirty is None or after.anonymous is None:
        return "sound"
    wanted = pages if after.anonymous or "sd" in after.vmflags else 0
    return "sound" if after.soft_dirty == wanted else f"{after.soft_dirty} of {pages} pages soft-dirty, not {wanted}"


def exclusive_state(before: Snapshot, after: Snapshot, pages: int) -> str:
    """'sound' unless a page of a THP the call made is mapped more than once (pagemap bit 56 clear): the
    old pages' sharers (a fork child, other mappers of the file) keep the old pages or map it later."""
    if not made_thp(before, after) or not pages or after.exclusive is None or after.exclusive == pages:
        return "sound"
    return f"{pages - after.exclusive} of {pages} pages mapped more than once"


ST_BLOCK = 512  # bytes of a unit of st_blocks (stat(2))


def memcg_state(before: Snapshot, after: Snapshot) -> str:
    """'sound' unless a THP the call made is charged to another memcg than the owner's, whose mm it
    maps (mem_cgroup_charge(folio, mm, gfp): not the caller's, not the old pages')."""
    if not made_thp(before, after) or after.memcg is None or after.owner_memcg is None or after.memcg == after.owner_memcg:
        return "sound"
    return f"charged to cgroup {after.memcg}, not the owner's {after.owner_memcg}"


def file_blocks_state(before: Snapshot, after: Snapshot, geometry: Geometry | None) -> str:
    """'sound' unless a shared-memory THP the call made in a one-block region left the file's
    st_blocks grown by other than the block's holes (shmem_charge(mapping->host, nr_none): holes
    and pages past the end of the file are filled and charged to the file)."""
    if geometry is None or not made_thp(before, after) or not after.shared_memory or len(after.blocks) != 1:
        return "sound"
    if before.file_holes is None or before.file_blocks is None or after.file_blocks is None:
        return "sound"
    grown, wanted = after.file_blocks - before.file_blocks, before.file_holes * geometry.page // ST_BLOCK
    return "sound" if grown == wanted else f"st_blocks grew by {grown}, not {wanted} ({before.file_holes} holes)"


def writable_thp(after: Snapshot) -> bool:
    """Should a THP the call made be mapped writable: anonymous in a writable VMA (maybe_pmd_mkwrite()),
    or shared memory in a shared writable VMA that asks for no write notification (no soft-dirty
    tracking: VM_SOFTDIRTY set or not tracked; not WP-armed by a userfaultfd: 'uw'); other page
    cache is mapped with vm_page_prot, read-only where the VMA is private or wants to hear of writes."""
    if "wr" not in after.vmflags:
        return False
    if after.anonymous:
        return True
    tracking_soft_dirty = after.soft_dirty is not None and "sd" not in after.vmflags
    uffd_wp_armed = "uw" in after.vmflags
    return bool(after.shared_memory) and "sh" in after.vmflags and not tracking_soft_dirty and not uffd_wp_armed


def write_state(before: Snapshot, after: Snapshot, faults: int | None) -> str:
    """'sound' unless the owner's first write to a THP the call made faulted where the THP should be
    mapped writable (writable_thp()), or did not fault where it should not."""
    if faults is None or not made_thp(before, after) or after.anonymous is None:
        return "sound"
    if writable_thp(after) == (faults == 0):
        return "sound"
    return f"the first write took {faults} faults on a writable THP" if faults else "the first write took no fault on a read-only THP"


def summarize(observed: Observation) -> dict[str, object]:
    """The observation reduced to the quantities the rules speak of."""
    before, after, evidence = observed.before, observed.after, observed.evidence
    pages = observed.geometry.pages_per_block if observed.geometry else 0  # 0: recorded before pagemap bits were
    block_kb = observed.geometry.block_kb if observed.geometry else 0
    result = observed_result(observed.caller, observed.call, observed.length)
    return {
        "result": result,
        "pmd_mapped": after.pmd_mapped,
        "blocks": after.blocks,
        "data": "intact" if observed.data_intact else "corrupted",
        "vmflags": vmflags_change(before.vmflags, after.vmflags),
        "views": "agree" if after.views_agree else f"smaps {after.pmd_kb} kB vs kpageflags {after.thp_pages} THP pages",
        "mlock": mlock_change(before.mlocked, after.mlocked),
        "node": node_change(before, after),
        "folio": folio_state(before, after),
        "soft_dirty": soft_dirty_state(before, after, pages),
        "exclusive": exclusive_state(before, after, pages),
        "memcg": memcg_state(before, after),
        "file_blocks": file_blocks_state(before, after, observed.geometry),
        "write": write_state(before, after, observed.write_faults),
        **_allocation(observed, result),
        **_persistence(evidence),
        **({"thp_disable": "kept" if evidence.thp_disable_inherited else "dropped"} if evidence.thp_disable_inherited is not None else {}),
        **(
            {"refused": result != "ok", "guards": "fault" if evidence.guards_fault else "lost"} if evidence.guards_fault is not None else {}
        ),
        **({"same_folio": evidence.same_folio} if evidence.same_folio is not None else {}),
        **({"ksm_shared": evidence.ksm_shared} if evidence.ksm_shared is not None else {}),
        **({"other_mapper": "pmd" if evidence.mapper_pmd_kb == block_kb else "ptes"} if evidence.mapper_pmd_kb is not None else {}),
        **({"past_eof": evidence.past_eof} if evidence.past_eof is not None else {}),
        **({"uffd_protected": uffd_protection(*evidence.uffd_protected)} if evidence.uffd_protected is not None else {}),
    }


def uffd_protection(before: int, after: int) -> str:
    """'kept' when as many pages of the block carry the uffd bit after the call as before, 'lost' when
    none does any more, else 'AFTER of BEFORE'; 'none protected' when none did before."""
    if before == 0:
        return "none protected"
    if after == before:
        return "kept"
    return "lost" if after == 0 else f"{after} of {before}"


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


def versions_cell(rule: Rule) -> str:
    """'>=6.1 (7d8faaf15545, v6.1), <7.3 (72c3d682c165, v7.3; stable 6.12.113, 7.2.10)': each clause with the change behind it."""
    return ", ".join(f"{'>=' if has else '<'}{change.release[1:]} ({change.label})" for has, change in rule.clauses) or "all"
