"""docs/rules.md from the rule book: the grids and their case counts, the rules grouped, each rule's
versions with the change behind each bound, and the changes themselves.

`python -m suites.docs` prints it; `python -m suites.docs --write` rewrites docs/rules.md and, with
suites/coverage.py, docs/coverage.md. suites/unit/test_docs.py fails when the file is not what this module
makes of rules.toml (suites/unit/test_coverage.py, for docs/coverage.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from reports.exits import Exit, Parser, run_command
from suites.rulebook import RULES_FILE, SPECS, Rule, RuleBook, load, versions_cell
from vm.presence import Change

RULES_DOC = RULES_FILE.parent.parent / "docs" / "rules.md"
WRITE_HINT = "run python -m suites.docs --write"


@dataclass(frozen=True)
class Grid:
    """One test of the book as the docs show it: its size and the rules that decide its cases."""

    name: str
    cases: int
    dimensions: str
    requires: str
    rules: str
    description: str


def cell(text: str) -> str:
    """Text that stays in its Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def grids(book: RuleBook) -> list[Grid]:
    by_test: dict[str, list[str]] = {}
    for rule in book.rules:
        by_test.setdefault(rule.test, [])
        if rule.id not in by_test[rule.test]:
            by_test[rule.test].append(rule.id)
    return [
        Grid(
            name=test.name,
            cases=len(test.grid()),
            dimensions=" x ".join(f"{dim} ({len(values)})" for dim, values in test.dimensions.items()),
            requires=", ".join(test.requires) or "-",
            rules=", ".join(by_test.get(test.name, [])),
            description=test.description,
        )
        for test in book.tests.values()
    ]


def rule_ids(book: RuleBook) -> list[str]:
    return list(dict.fromkeys(rule.id for rule in book.rules))


def grid_section(book: RuleBook) -> list[str]:
    rows = grids(book)
    lines = [
        "## Grids",
        "",
        f"{sum(g.cases for g in rows)} cases per kernel and spec, in {len(rows)} grids; {len(rule_ids(book))} rule ids."
        " Each grid is the cross product of its dimensions (the count of values in brackets); a kernel that lacks"
        " a required option SKIPs the grid's cases with that option named.",
        "",
        "| grid | cases | dimensions | requires | rules | what it checks |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {g.name} | {g.cases} | {g.dimensions} | {g.requires} | {g.rules} | {cell(g.description)} |" for g in rows]
    return lines


def first_rules(book: RuleBook) -> dict[str, tuple[Rule, list[str]]]:
    """Each rule id once (X0 repeats per grid), with every grid it decides cases of."""
    found: dict[str, tuple[Rule, list[str]]] = {}
    for rule in book.rules:
        _, tests = found.setdefault(rule.id, (rule, []))
        if rule.test not in tests:
            tests.append(rule.test)
    return found


def rule_row(rule: Rule, tests: list[str]) -> str:
    specs = "all" if set(rule.specs) == set(SPECS) else ", ".join(rule.specs)
    statement = rule.statement + (f" (SKIP: {rule.skip})" if rule.skip else "")
    if rule.config:
        statement += " [config: " + ", ".join(f"{opt}={want}" for opt, want in rule.config.items()) + "]"
    return f"| {rule.id} | {cell(statement)} | {versions_cell(rule)} | {specs} | {', '.join(tests)} |"


def rule_section(book: RuleBook) -> list[str]:
    by_group: dict[str, list[str]] = {}
    for rule, tests in first_rules(book).values():
        by_group.setdefault(rule.group, []).append(rule_row(rule, tests))
    lines = [
        "## Rules by group",
        "",
        "Within a grid, rules are tried in rules.toml's order: the first that matches the case, holds for the kernel's"
        " changes (and config) and belongs to the spec being checked decides the expectation. Each bound in the"
        " versions column names the change that puts it there: its mainline commit and first release, and the"
        " stable releases that carry it; '>=X.Y' holds for a kernel that has the change, '<X.Y' for one that lacks it.",
    ]
    for group, rows in by_group.items():
        lines += ["", f"### {group}", "", "| id | statement | versions | spec | grids |", "|---|---|---|---|---|", *rows]
    return lines


def citing(book: RuleBook, change: Change) -> str:
    return ", ".join(dict.fromkeys(rule.id for rule in book.rules if change.key in {c.key for c in rule.bounds.values()}))


def change_section(book: RuleBook) -> list[str]:
    lines = [
        "## Version bounds",
        "",
        "Each `[change.*]` of rules.toml: the mainline commit, the first mainline release that contains it, and the"
        " stable releases that carry it, with where that was checked. A rule bounded '>=X.Y' holds for a kernel that has"
        " the change, '<X.Y' for one that lacks it: decided per kernel from its git history, its Debian changelog, else"
        " its version (docs/kernels.md, 'Backports').",
        "",
        "| change | commit | mainline | title | stable releases | rules bounded by it | stable checked at | read at |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for change in book.changes.values():
        stable = ", ".join(".".join(map(str, v)) for v in change.stable) or "none"
        lines.append(
            f"| {change.key} | {change.commit} | {change.release} | {cell(change.title)} | {stable} | {citing(book, change) or '-'} "
            f"| {cell(change.stable_read)} | {cell(change.read or '-')} |"
        )
    return lines


def render(book: RuleBook) -> str:
    """The whole of docs/rules.md."""
    invariants = [f"- **{name}**: {cell(text)}" for name, text in book.invariants.items()]
    lines = [
        f"<!-- Generated from suites/rules.toml by suites/docs.py: do not edit; {WRITE_HINT}. -->",
        "",
        f"# The rule book {book.version}",
        "",
        "What each kernel version must do, generated from [`suites/rules.toml`](../suites/rules.toml). How the grids"
        " are set up and why: [grids.md](grids.md). The specs (`--spec upstream|documented|proposal`): [design.md](design.md#specs).",
        "",
        "Every case also checks the invariants:",
        "",
        *invariants,
        "",
        *grid_section(book),
        "",
        *rule_section(book),
        "",
        *change_section(book),
    ]
    return "\n".join(lines) + "\n"


def stale(path: Path = RULES_DOC, book: RuleBook | None = None) -> bool:
    """Does PATH differ from what the rule book makes (a missing file does)?"""
    wanted = render(book or load())
    return not path.is_file() or path.read_text() != wanted


def main(argv: list[str] | None = None) -> int:
    from suites import coverage  # it renders with this module's helpers

    parser = Parser(
        prog="python -m suites.docs", description="docs/rules.md from suites/rules.toml, docs/coverage.md from suites/coverage.toml"
    )
    parser.add_argument("--write", action="store_true", help="rewrite docs/rules.md and docs/coverage.md")
    args = parser.parse_args(argv)
    try:  # a rules.toml or coverage.toml that does not parse is the user's to fix: one line, no traceback
        book = load()
        covered = coverage.load()
        coverage.check_covers(book, covered)
    except (ValueError, KeyError) as err:
        print(f"python -m suites.docs: {err}", file=sys.stderr)
        return Exit.USAGE
    text = render(book)
    if args.write:
        RULES_DOC.parent.mkdir(exist_ok=True)
        RULES_DOC.write_text(text)
        coverage.COVERAGE_DOC.write_text(coverage.render(book, covered))
    else:
        print(text, end="")
    return Exit.CLEAN


if __name__ == "__main__":
    run_command(main)
