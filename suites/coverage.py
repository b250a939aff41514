"""docs/coverage.md from suites/coverage.toml and the rule book: for each source tree read, every scan_result
value and eligibility gate, whether MADV_COLLAPSE reaches it, its errno and loop disposition, and the rules
(with their planned case counts on that tree's kernel) that cover it.

Rules declare what they cover (`covers` in rules.toml); coverage.toml says what exists. Pure data: the kernel
sources are never read here. suites/docs.py writes the file; suites/unit/test_coverage.py holds the ratchet.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from fixtures.steps import MEMORY_TYPES
from suites.docs import WRITE_HINT, cell
from suites.rulebook import RULES_FILE, SPECS, Rule, RuleBook, UnbuiltKernel, plan
from vm.version import Version, parse_version

COVERAGE_FILE = RULES_FILE.with_name("coverage.toml")
COVERAGE_DOC = RULES_FILE.parent.parent / "docs" / "coverage.md"
MEMORY = ("anon", "shmem", "memfd", "tmpfs", "file", "hugetlb")
LOOPS = ("counts", "continues", "stops", "re-judged", "-")


class Kind(Enum):
    """Whether MADV_COLLAPSE reaches a value or gate, and whether a case can set it up (coverage.toml's header)."""

    SETTABLE = "settable"
    RACE = "race"
    POISON = "hardware poison"
    ALLOCATION = "allocation failure"
    DEVICE = "device memory"
    HARDWARE = "hardware"
    CONFIG = "kernel config"
    KHUGEPAGED = "khugepaged only"
    BYPASSED = "bypassed"
    UNREACHABLE = "not reachable"

    @property
    def reachable(self) -> bool:
        return self not in (Kind.KHUGEPAGED, Kind.BYPASSED, Kind.UNREACHABLE)

    @property
    def label(self) -> str:
        if self is Kind.SETTABLE:
            return "yes"
        return f"yes, cannot be set up: {self.value}" if self.reachable else f"no: {self.value}"


@dataclass(frozen=True)
class Tree:
    name: str  # '6.12'
    kernel: Version  # the Debian kernel whose source was read: its cases are counted
    source: str


@dataclass(frozen=True)
class Row:
    """One scan_result value or gate as one tree has it."""

    tree: str
    name: str
    gate: bool
    kind: Kind
    why: str
    memory: tuple[str, ...]
    at: str  # source lines
    errno: str
    loop: str
    enum: int = 0  # its line in enum scan_result (values only)
    errno_at: int = 0  # the line of madvise_collapse_errno()'s case; 0: the default arm
    loop_at: int = 0  # the line of madvise_collapse()'s switch arm; 0: the default arm
    blind: str = ""  # why a case on one memory type covers every one (the code never looks at the memory type)
    unsettable: Mapping[str, str] = field(default_factory=dict)  # memory type -> why no case can set it up there


@dataclass(frozen=True)
class Gap:
    name: str
    trees: tuple[str, ...]
    plan: str
    memory: tuple[str, ...] = ()  # the memory types it is missing on; empty: every one the value has


ANY = "any"  # the memory "type" of a memory-blind row: a case on any type covers it


@dataclass(frozen=True)
class Coverage:
    trees: dict[str, Tree]
    rows: tuple[Row, ...]
    gaps: tuple[Gap, ...]
    config_off: tuple[str, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(row.name for row in self.rows)

    def tree_rows(self, tree: str) -> list[Row]:
        return [row for row in self.rows if row.tree == tree]

    def gap_names(self, tree: str) -> set[str]:
        return {gap.name for gap in self.gaps if tree in gap.trees}

    def gap_pairs(self, tree: str) -> set[tuple[str, str]]:
        """(name, memory type) for each memory type a gap leaves uncovered on TREE (ANY for a memory-blind row)."""
        rows = {row.name: row for row in self.tree_rows(tree)}
        pairs = set()
        for gap in self.gaps:
            if tree in gap.trees and gap.name in rows:
                row = rows[gap.name]
                pairs |= {(gap.name, memory) for memory in (gap.memory or memory_types(row))}
        return pairs


ENTRY_KEYS = frozenset({"name", "kind", "memory", "why", "errno", "loop", "tree", "blind", "unsettable"})
TREE_KEYS = frozenset({"enum", "set", "at", "errno", "errno_at", "loop", "loop_at", "kind", "why", "memory", "blind", "unsettable"})


def memory_types(row: Row) -> tuple[str, ...]:
    """The memory types a row must be covered on: each of its own that a case can set up, or ANY when it
    is memory-blind."""
    return (ANY,) if row.blind else tuple(memory for memory in row.memory if memory not in row.unsettable)


@cache
def load(path: Path = COVERAGE_FILE) -> Coverage:
    return parse(tomllib.loads(path.read_text()))


def parse(data: dict[str, Any]) -> Coverage:
    """coverage.toml's parsed data, checked: known kinds, memory types, loops and trees, every name once."""
    trees = {name: Tree(name, parse_version(body["kernel"]), body["source"]) for name, body in data["tree"].items()}
    rows = [row for entry in data.get("value", []) for row in parse_entry(entry, trees, gate=False)]
    rows += [row for entry in data.get("gate", []) for row in parse_entry(entry, trees, gate=True)]
    seen = Counter((row.tree, row.name) for row in rows)
    if twice := [key for key, n in seen.items() if n > 1]:
        raise ValueError(f"coverage: listed twice: {twice}")
    names = {row.name for row in rows}
    gaps = tuple(parse_gap(raw, names, trees) for raw in data.get("gap", []))
    return Coverage(trees=trees, rows=tuple(rows), gaps=gaps, config_off=tuple(data.get("planning", {}).get("config_off", ())))


def parse_entry(entry: dict[str, Any], trees: dict[str, Tree], gate: bool) -> list[Row]:
    name = entry.get("name", "")
    if gate != name.startswith("gate:") or (not gate and not name.startswith("SCAN_")):
        raise ValueError(f"coverage: {name!r}: a [[value]] is named SCAN_..., a [[gate]] gate:...")
    if unknown := set(entry) - ENTRY_KEYS:
        raise ValueError(f"coverage {name}: unknown keys {sorted(unknown)}")
    rows = []
    for tree, body in entry["tree"].items():
        if tree not in trees:
            raise ValueError(f"coverage {name}: unknown tree {tree!r}; trees are {', '.join(trees)}")
        if unknown := set(body) - TREE_KEYS:
            raise ValueError(f"coverage {name} ({tree}): unknown keys {sorted(unknown)}")
        merged = {**entry, **body, "unsettable": {**entry.get("unsettable", {}), **body.get("unsettable", {})}}
        rows.append(make_row(name, tree, gate, merged))
    return rows


def make_row(name: str, tree: str, gate: bool, merged: dict[str, Any]) -> Row:
    try:
        kind = Kind(merged["kind"])
    except ValueError:
        raise ValueError(f"coverage {name} ({tree}): kind {merged['kind']!r} is none of {', '.join(k.value for k in Kind)}") from None
    memory = tuple(merged["memory"])
    if not set(memory) <= set(MEMORY):
        raise ValueError(f"coverage {name} ({tree}): memory types are {', '.join(MEMORY)}, got {memory}")
    if merged["loop"] not in LOOPS:
        raise ValueError(f"coverage {name} ({tree}): loop is one of {', '.join(LOOPS)}, got {merged['loop']!r}")
    if not set(merged.get("unsettable", {})) <= set(memory):
        raise ValueError(f"coverage {name} ({tree}): unsettable names memory types the row does not have")
    if not str(merged.get("why", "")).strip():
        raise ValueError(f"coverage {name} ({tree}): say why (what sets it, or why MADV_COLLAPSE cannot)")
    return Row(
        tree=tree,
        name=name,
        gate=gate,
        kind=kind,
        why=merged["why"],
        memory=memory,
        at=merged.get("at") or merged.get("set", ""),
        errno=merged["errno"],
        loop=merged["loop"],
        enum=merged.get("enum", 0),
        errno_at=merged.get("errno_at", 0),
        loop_at=merged.get("loop_at", 0),
        blind=merged.get("blind", ""),
        unsettable=dict(merged.get("unsettable", {})),
    )


def parse_gap(raw: dict[str, Any], names: set[str], trees: dict[str, Tree]) -> Gap:
    gap = Gap(name=raw["name"], trees=tuple(raw["trees"]), plan=raw.get("plan", ""), memory=tuple(raw.get("memory", ())))
    if gap.name not in names:
        raise ValueError(f"coverage gap {gap.name}: no such value or gate")
    if not set(gap.memory) <= set(MEMORY):
        raise ValueError(f"coverage gap {gap.name}: memory types are {', '.join(MEMORY)}, got {gap.memory}")
    if not set(gap.trees) <= set(trees) or not gap.plan.strip():
        raise ValueError(f"coverage gap {gap.name}: needs trees among {', '.join(trees)} and a one-line plan")
    return gap


def check_covers(book: RuleBook, coverage: Coverage) -> None:
    """Every name a rule's `covers` lists is a value or gate of coverage.toml."""
    for rule in book.rules:
        if unknown := [name for name in rule.covers if name not in coverage.names]:
            raise ValueError(f"rule {rule.id}: covers {unknown}, not in {COVERAGE_FILE.name}")


# ------------------------------------------------------------------ counting


def planning_config(book: RuleBook, coverage: Coverage) -> dict[str, str]:
    """Every grid's required option present, but for those the suite's Debian kernels lack."""
    wanted = {opt: "y" for test in book.tests.values() for opt in test.requires}
    return {**wanted, **dict.fromkeys(coverage.config_off, "n")}


def counting_spec(rule: Rule) -> str:
    """A rule's cases are counted once: in the upstream spec, or in its own spec when it belongs to another."""
    return SPECS[0] if SPECS[0] in rule.specs else rule.specs[0]


def case_counts(book: RuleBook, tree: Tree, config: Mapping[str, str]) -> Counter[tuple[str, str]]:
    """(rule id, memory type) -> cases the rule decides and runs (not SKIPped) on TREE's kernel with that
    memory type, each counted in its rule's spec."""
    kernel = UnbuiltKernel(name=f"tree-{tree.name}", label=tree.name, version=tree.kernel, config=dict(config))
    spec_of = {rule.id: counting_spec(rule) for rule in book.rules}
    counts: Counter[tuple[str, str]] = Counter()
    for spec in SPECS:
        for test in book.tests:
            counts.update(
                (c.rule, MEMORY_TYPES[c.params.get("memory", "anon")].kind)
                for c in plan(book, test, kernel, spec)
                if c.rule and c.skip is None and spec_of[c.rule] == spec
            )
    return counts


@dataclass(frozen=True)
class Cover:
    """A rule that covers a value or gate, and its cases on one tree by memory type."""

    rule: str
    cases: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def covering(book: RuleBook, coverage: Coverage) -> dict[tuple[str, str], list[Cover]]:
    """(tree, name) -> the rules that cover the name, in rule-book order, each with its cases on that tree."""
    by_name: dict[str, list[str]] = {}
    for rule in book.rules:
        for name in rule.covers:
            if rule.id not in by_name.setdefault(name, []):
                by_name[name].append(rule.id)
    config = planning_config(book, coverage)
    found = {}
    for tree in coverage.trees.values():
        counts = case_counts(book, tree, config)
        for row in coverage.tree_rows(tree.name):
            found[(tree.name, row.name)] = [
                Cover(rule_id, {memory: counts[(rule_id, memory)] for memory in MEMORY if counts[(rule_id, memory)]})
                for rule_id in by_name.get(row.name, [])
            ]
    return found


def covered_memory(row: Row, covers: list[Cover]) -> set[str]:
    """The memory types of ROW that some case covers (ANY for a memory-blind row with any case)."""
    seen = {memory for cover in covers for memory in cover.cases}
    return ({ANY} if seen else set()) if row.blind else seen & set(row.memory)


def uncovered(book: RuleBook, coverage: Coverage) -> dict[str, list[tuple[str, str]]]:
    """Tree -> (name, memory type) for each settable value or gate and each memory type it has that no
    rule has a case for there."""
    cover = covering(book, coverage)
    found: dict[str, list[tuple[str, str]]] = {}
    for tree in coverage.trees:
        found[tree] = []
        for row in coverage.tree_rows(tree):
            if row.kind is Kind.SETTABLE:
                done = covered_memory(row, cover[(tree, row.name)])
                found[tree] += [(row.name, memory) for memory in memory_types(row) if memory not in done]
    return found


# ------------------------------------------------------------------ the document


@dataclass(frozen=True)
class Summary:
    tree: str
    values: int
    gates: int
    reachable: int
    settable: int
    covered: int  # settable rows covered on every memory type they have
    gaps: list[tuple[str, str]]


def summaries(book: RuleBook, coverage: Coverage) -> list[Summary]:
    missing = uncovered(book, coverage)
    found = []
    for tree in coverage.trees:
        rows = coverage.tree_rows(tree)
        settable = [row for row in rows if row.kind is Kind.SETTABLE]
        found.append(
            Summary(
                tree=tree,
                values=sum(not row.gate for row in rows),
                gates=sum(row.gate for row in rows),
                reachable=sum(row.kind.reachable for row in rows),
                settable=len(settable),
                covered=len(settable) - len({name for name, _ in missing[tree]}),
                gaps=missing[tree],
            )
        )
    return found


def where(row: Row) -> str:
    if row.gate:
        return row.at
    return f"enum :{row.enum}; set {row.at}"


def errno_cell(row: Row) -> str:
    if row.loop == "counts":
        return "none (collapsed)"
    if row.gate:
        return row.errno
    return f"{row.errno} ({'default' if not row.errno_at else f':{row.errno_at}'})"


def loop_cell(row: Row) -> str:
    if row.gate or row.loop == "-":
        return row.loop
    return f"{row.loop} ({'default' if not row.loop_at else f':{row.loop_at}'})"


def rules_cell(cover: list[Cover]) -> str:
    """The covering rules with cases on this tree; rules that declare it but run no case here are named apart."""
    running = ", ".join(f"{c.rule} ({c.total})" for c in cover if c.total)
    idle = ", ".join(c.rule for c in cover if not c.total)
    if running:
        return running
    return f"none here (declared by {idle})" if idle else "-"


def memory_cell(row: Row, cover: list[Cover]) -> str:
    """Each memory type the row has, as covered or not; a memory-blind row says why one type is enough."""
    if row.blind:
        return f"any: {row.blind}"
    done = covered_memory(row, cover)
    if row.kind is not Kind.SETTABLE:
        return ", ".join(row.memory)
    missing = [memory for memory in memory_types(row) if memory not in done]
    covered = ", ".join(memory for memory in row.memory if memory in done) or "none"
    unsettable = "; ".join(f"{memory}: cannot be set up ({why})" for memory, why in row.unsettable.items())
    return covered + (f"; **not yet: {', '.join(missing)}**" if missing else "") + (f"; {unsettable}" if unsettable else "")


def tree_section(tree: Tree, coverage: Coverage, cover: dict[tuple[str, str], list[Cover]]) -> list[str]:
    lines = [
        f"## {tree.name}: {tree.source}",
        "",
        f"Case counts are the cases each rule decides and runs on {'.'.join(map(str, tree.kernel))}.",
        "",
        "| value or gate | source | reachable by MADV_COLLAPSE | why | errno | loop | memory (covered) | rules (cases) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(coverage.tree_rows(tree.name), key=lambda row: (row.gate, row.enum)):  # values in enum order, then gates
        covers = cover[(tree.name, row.name)]
        lines.append(
            f"| {row.name} | {cell(where(row))} | {row.kind.label} | {cell(row.why)} | {errno_cell(row)} | {loop_cell(row)} "
            f"| {cell(memory_cell(row, covers))} | {rules_cell(covers)} |"
        )
    return lines


def summary_section(rows: list[Summary]) -> list[str]:
    lines = [
        "| tree | values | gates | reachable | can be set up | covered | not covered yet |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {s.tree} | {s.values} | {s.gates} | {s.reachable} | {s.settable} | {s.covered} | {pairs_text(s.gaps)} |" for s in rows]
    return lines


def pairs_text(pairs: list[tuple[str, str]]) -> str:
    """'SCAN_X (shmem, memfd), gate:Y' from (name, memory type) pairs, in order."""
    by_name: dict[str, list[str]] = {}
    for name, memory in pairs:
        by_name.setdefault(name, []).append(memory)
    return ", ".join(name if memories == [ANY] else f"{name} ({', '.join(memories)})" for name, memories in by_name.items()) or "-"


def gap_section(coverage: Coverage) -> list[str]:
    lines = ["## Not covered yet", ""]
    if not coverage.gaps:
        return [
            *lines,
            "Nothing: every value and gate MADV_COLLAPSE reaches and a case can set up has a case on every memory type"
            " where it exists. suites/unit/test_coverage.py fails when one is uncovered and not listed here as a gap.",
        ]
    lines += [
        "MADV_COLLAPSE reaches these on these memory types and a case could set them up, but no rule has one yet."
        " suites/unit/test_coverage.py fails when a value is uncovered on a type and not listed here, and when one listed"
        " here gets a case (take it off the list then).",
        "",
        "| value or gate | memory | trees | plan |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {gap.name} | {', '.join(gap.memory) or 'every type it has'} | {', '.join(gap.trees)} | {cell(gap.plan)} |"
        for gap in coverage.gaps
    ]
    return lines


def render(book: RuleBook, coverage: Coverage) -> str:
    """The whole of docs/coverage.md."""
    cover = covering(book, coverage)
    totals = summaries(book, coverage)
    lines = [
        f"<!-- Generated from suites/coverage.toml and suites/rules.toml by suites/coverage.py: do not edit; {WRITE_HINT}. -->",
        "",
        "# What this suite checks: every path through the collapse code",
        "",
        "One row per `scan_result` value and per eligibility gate of each kernel source tree read: whether MADV_COLLAPSE"
        " reaches it (and why, or why not), the errno madvise_collapse() returns for it, whether its loop goes on to the"
        " next block or stops, the memory types whose path has it and which of them a case covers, and the rules that"
        " cover it with the cases each runs on that tree's kernel. The data: [`suites/coverage.toml`](../suites/coverage.toml)"
        " (source lines per tree); each rule's `covers` in [`suites/rules.toml`](../suites/rules.toml); the rules"
        " themselves: [rules.md](rules.md); the state the new THP inherits: [inherited.md](inherited.md).",
        "",
        "Coverage is per memory type (anon, shmem, memfd, tmpfs, file, hugetlb): a value is covered on a type when a"
        " rule that covers it runs a case on that type. A gate taken before the code looks at the memory type (process_madvise()'s"
        " permission checks, a hole in the range, the first eligibility checks) is covered by a case on any type: the"
        " table says why (`any:`). Some reachable values cannot be set up by a case, on every type or on some (a race,"
        " hardware poison, a failed kernel allocation, device memory, other hardware or kernel configuration): the table"
        " says which and why. For a value MADV_COLLAPSE cannot reach (khugepaged only) or a gate it bypasses (the sysfs"
        " knobs it ignores), the rules listed check that it does not apply.",
        "",
        "What a case could set up but none does yet is under [Not covered yet](#not-covered-yet), with its plan;"
        " suites/unit/test_coverage.py keeps that list exact.",
        "",
        "## Summary",
        "",
        *summary_section(totals),
        "",
        *gap_section(coverage),
    ]
    for tree in coverage.trees.values():
        lines += ["", *tree_section(tree, coverage, cover)]
    return "\n".join(lines) + "\n"


def stale(path: Path, book: RuleBook, coverage: Coverage) -> bool:
    """Does PATH differ from what the data makes (a missing file does)?"""
    return not path.is_file() or path.read_text() != render(book, coverage)
