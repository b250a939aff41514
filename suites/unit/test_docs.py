"""docs/rules.md is what suites/docs.py makes of the rule book now."""

from __future__ import annotations

from pathlib import Path

from suites import docs, rulebook

BOOK = rulebook.load()


def test_docs_rules_md_is_current() -> None:
    assert not docs.stale(docs.RULES_DOC, BOOK), f"docs/rules.md is not the rule book's: {docs.WRITE_HINT}"


def test_a_changed_rule_book_makes_the_file_stale(tmp_path: Path) -> None:
    path = tmp_path / "rules.md"
    assert docs.stale(path, BOOK)  # missing
    path.write_text(docs.render(BOOK))
    assert not docs.stale(path, BOOK)
    path.write_text(docs.render(BOOK).replace("| A0 |", "| A0-edited |"))
    assert docs.stale(path, BOOK)


def test_every_rule_appears_once_under_its_group_with_its_bounds() -> None:
    text = docs.render(BOOK)
    for rule_id in docs.rule_ids(BOOK):
        assert text.count(f"\n| {rule_id} |") == 1, rule_id
    assert "| >=6.11 (e7a2ab7b3bb5, v6.11) |" in text
    forced = "| shmem-forced-collapse | 72c3d682c165 | v7.3 | mm: shmem: ignore sysfs configs for shmem forced collapse | 6.12.113, 7.2.10"
    assert forced in text
    assert "[config: READ_ONLY_THP_FOR_FS=y]" in text
    assert {f"### {rule.group}" for rule in BOOK.rules} <= set(text.splitlines())


def test_the_grid_counts_add_up_to_the_cases_per_kernel() -> None:
    rows = docs.grids(BOOK)
    assert sum(g.cases for g in rows) == sum(len(t.grid()) for t in BOOK.tests.values())
    assert {g.name for g in rows} == set(BOOK.tests)


def test_a_pipe_in_a_statement_stays_in_its_cell() -> None:
    assert docs.cell("a | b\nc") == "a \\| b c"
