"""The coverage table (issue 21): every value or gate MADV_COLLAPSE reaches and a case can set up has a
covering rule, or stands on the committed gap list, which only shrinks; docs/coverage.md is current."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from suites import coverage, docs, rulebook

BOOK = rulebook.load()
COVERAGE = coverage.load()
RAW: dict[str, Any] = tomllib.loads(coverage.COVERAGE_FILE.read_text())


def test_docs_coverage_md_is_current() -> None:
    assert not coverage.stale(coverage.COVERAGE_DOC, BOOK, COVERAGE), f"docs/coverage.md is not the data's: {docs.WRITE_HINT}"


def test_every_name_a_rule_covers_is_in_the_coverage_data() -> None:
    coverage.check_covers(BOOK, COVERAGE)


def test_a_rule_covering_an_unknown_name_is_refused() -> None:
    rule = dataclasses.replace(next(rule for rule in BOOK.rules if rule.id == "A3"), covers=("SCAN_NOPE",))
    bad = rulebook.RuleBook(BOOK.version, BOOK.invariants, BOOK.tests, (rule,))
    with pytest.raises(ValueError, match="A3: covers \\['SCAN_NOPE'\\]"):
        coverage.check_covers(bad, COVERAGE)


def test_covers_must_name_values_or_gates() -> None:
    raw = {"id": "Z", "test": "eligibility", "group": "g", "statement": "s", "source": "s", "expect": {}, "covers": ["A3"]}
    with pytest.raises(ValueError, match="covers"):
        rulebook.parse_rule(raw, BOOK.tests, BOOK.changes)


@pytest.mark.parametrize("tree", list(COVERAGE.trees))
def test_every_reachable_value_has_a_rule_or_is_a_known_gap(tree: str) -> None:
    """A settable value or gate with no case on TREE's kernel, on a memory type it has, must be on the gap
    list for that memory type, with its plan."""
    missing = set(coverage.uncovered(BOOK, COVERAGE)[tree]) - COVERAGE.gap_pairs(tree)
    assert not missing, f"{tree}: no rule covers {sorted(missing)}: write one, or add a [[gap]] with its memory and plan"


@pytest.mark.parametrize("tree", list(COVERAGE.trees))
def test_the_gap_list_only_shrinks(tree: str) -> None:
    """A gap that a rule now covers leaves the list."""
    closed = COVERAGE.gap_pairs(tree) - set(coverage.uncovered(BOOK, COVERAGE)[tree])
    assert not closed, f"{tree}: {sorted(closed)} now covered: take them off the [[gap]] list in suites/coverage.toml"


def test_every_tree_has_the_values_every_kernel_has() -> None:
    for tree in COVERAGE.trees:
        names = {row.name for row in COVERAGE.tree_rows(tree)}
        assert {"SCAN_SUCCEED", "SCAN_FAIL", "SCAN_PMD_MAPPED", "SCAN_PAGE_COUNT", "gate:VM_NOHUGEPAGE", "gate:anon_vma"} <= names, tree


def test_unreachable_and_unsettable_rows_say_why() -> None:
    for row in COVERAGE.rows:
        assert row.why.strip(), (row.tree, row.name)
        assert row.kind.reachable == (row.kind not in (coverage.Kind.KHUGEPAGED, coverage.Kind.BYPASSED, coverage.Kind.UNREACHABLE))


def test_a_counted_value_has_no_errno_and_a_continued_one_names_its_arm() -> None:
    rows = {(row.tree, row.name): row for row in COVERAGE.rows}
    assert coverage.errno_cell(rows[("6.12", "SCAN_SUCCEED")]) == "none (collapsed)"
    assert coverage.loop_cell(rows[("6.12", "SCAN_PAGE_COUNT")]).startswith("continues (:")
    assert rows[("6.12", "SCAN_EXCEED_NONE_PTE")].errno == "EBUSY"
    assert rows[("6.1", "SCAN_EXCEED_NONE_PTE")].errno == "EINVAL"


def test_an_unknown_kind_is_refused() -> None:
    data = {**RAW, "value": [{**RAW["value"][0], "kind": "maybe"}]}
    with pytest.raises(ValueError, match="kind 'maybe'"):
        coverage.parse(data)


def test_a_gap_needs_a_known_name_and_a_plan() -> None:
    with pytest.raises(ValueError, match="no such value"):
        coverage.parse({**RAW, "gap": [{"name": "SCAN_NOPE", "trees": ["6.1"], "plan": "p"}]})
    with pytest.raises(ValueError, match="one-line plan"):
        coverage.parse({**RAW, "gap": [{"name": "SCAN_PMD_NULL", "trees": ["6.1"], "plan": ""}]})


def test_a_stale_file_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "coverage.md"
    assert coverage.stale(path, BOOK, COVERAGE)
    path.write_text(coverage.render(BOOK, COVERAGE))
    assert not coverage.stale(path, BOOK, COVERAGE)


def test_the_doc_lists_every_gap_with_its_memory_types() -> None:
    text = coverage.render(BOOK, COVERAGE)
    assert "## Not covered yet" in text
    for gap in COVERAGE.gaps:
        assert f"\n| {gap.name} | {', '.join(gap.memory) or 'every type it has'} | " in text


def test_docs_main_refuses_a_bad_data_file_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> coverage.Coverage:
        raise ValueError("coverage gap SCAN_NOPE: no such value or gate")

    monkeypatch.setattr(coverage, "load", broken)
    assert docs.main([]) == 4
    assert capsys.readouterr().err.strip() == "python -m suites.docs: coverage gap SCAN_NOPE: no such value or gate"


def test_every_memory_type_a_case_runs_is_a_coverage_memory_type() -> None:
    from fixtures.steps import MEMORY_TYPES

    assert {memory.kind for memory in MEMORY_TYPES.values()} <= set(coverage.MEMORY)


def test_a_value_is_covered_per_memory_type() -> None:
    """C9 covers SCAN_SUCCEED on anon, shmem and memfd; a rule's cases on one memory type do not cover another."""
    row = next(row for row in COVERAGE.tree_rows("6.12") if row.name == "SCAN_PAGE_LOCK")
    covers = [coverage.Cover("C14.pair", {"anon": 2})]
    assert coverage.covered_memory(row, covers) == {"anon"}
    blind = dataclasses.replace(row, blind="checked before the VMA")
    assert coverage.covered_memory(blind, covers) == {coverage.ANY}
    assert coverage.memory_types(blind) == (coverage.ANY,)
