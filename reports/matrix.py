"""The pass/fail matrix in text (at most 100 columns) and Markdown.

Each opens with the one-line summary and the overview (one row per rule, one column per kernel),
then the failing cases expanded, then the full per-case table: rows are cases grouped by spec and
rule, columns are kernel builds. Cells show the stored class of each case (reports.record).
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass, field

from fixtures.observation import INVARIANT_EXPECT
from reports.record import WORDS, CaseClass, CaseRecord, Results, platform_text, presence_of
from reports.summary import (
    NOT_RUN_WORD,
    RETRIED_MARK,
    cell_class,
    cells,
    failures,
    incomplete_lines,
    overview,
    retried,
    retried_line,
    summary_line,
)

NOT_PLANNED = "·"  # no such case on that kernel (a planned case without a record is NOT_RUN_WORD)
TERMINAL_WIDTH = 100
OVERVIEW_CELL = 11  # 'ERROR 12/99' fits


@dataclass
class Row:
    """One case of the full table: its records per kernel (repeats in run order)."""

    spec: str
    test: str
    params: str
    records: dict[str, list[CaseRecord]] = field(default_factory=dict)  # kernel -> records of its repeats

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.spec, self.test, self.params)

    def word(self, kernel: str, results: Results) -> str:
        """The cell's word: its class, or whether a case without a record was planned there."""
        if kernel in self.records:
            return WORDS[self.cells[kernel]]
        return NOT_RUN_WORD if (self.key, kernel) in results.completeness.not_run else NOT_PLANNED

    @property
    def cells(self) -> dict[str, CaseClass]:
        return {kernel: cell_class(records) for kernel, records in self.records.items()}

    @property
    def rules(self) -> dict[str, str]:
        return {kernel: records[-1].rule or "-" for kernel, records in self.records.items()}

    def _deciding(self) -> dict[str, str]:
        """Rules that produced a verdict; a rule that only skips (X0 before 6.1) names no row."""
        ran = {k: r for k, r in self.rules.items() if self.cells.get(k) is not CaseClass.SKIP}
        return ran or self.rules

    @property
    def rule(self) -> str:
        """The rule deciding this case on most kernels (ties: the newest, rightmost)."""
        deciding = list(self._deciding().values())
        tally = Counter(deciding)
        return max(reversed(deciding), key=lambda r: tally[r]) if deciding else "-"

    @property
    def group(self) -> str:
        return next((records[-1].group for k, records in self.records.items() if self.rules[k] == self.rule), "unruled")

    def label(self, short: dict[str, str]) -> str:
        others = sorted({f"{r}@{short[k]}" for k, r in self._deciding().items() if r != self.rule})
        return self.params + (f" ({', '.join(others)})" if others else "")


def build(results: Results) -> list[Row]:
    rows: dict[tuple[str, str, str], Row] = {}
    for (key, kernel), records in cells(results).items():
        row = rows.setdefault(key, Row(*key))
        row.records[kernel] = records
    order = {spec: index for index, spec in enumerate(results.specs)}
    return sorted(rows.values(), key=lambda r: (order.get(r.spec, len(order)), r.group, r.rule, r.test, r.params))


def mismatches(case: CaseRecord) -> tuple[dict[str, object], dict[str, object]]:
    """(expected, observed) restricted to the quantities that differ."""
    expected: dict[str, object] = {**INVARIANT_EXPECT, **(case.expected or {})}
    observed: dict[str, object] = case.observed or {}
    keys = [k for k, v in expected.items() if k in observed and observed[k] != v]
    return {k: expected[k] for k in keys}, {k: observed[k] for k in keys}


def kernel_line(index: int, kernel: dict[str, object]) -> str:
    extra = ", ".join(f"{key} {kernel[key]}" for key in ("accel", "boot_s") if kernel.get(key) is not None)
    git = kernel.get("git")
    source = f" git {git['describe']}{' dirty' if git.get('dirty') else ''}" if isinstance(git, dict) and git.get("describe") else ""
    assumed = [
        f"{key}={'present' if p.get('present') else 'absent'}" for key, p in presence_of(kernel).items() if p.get("basis") == "assumed"
    ]
    assumes = f" ASSUMES {', '.join(assumed)}" if assumed else ""
    build = f"({kernel['release']}, build {kernel['build_id']}, {platform_text(kernel)})"
    return f"[{index}] {kernel['label']}: {kernel['version']} {build}{source}{assumes} {extra}".rstrip()


def short_names(results: Results) -> dict[str, str]:
    return {str(k["name"]): f"[{i}]" for i, k in enumerate(results.kernels, 1)}


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def failure_line(case: CaseRecord, short: dict[str, str], code: str = "") -> str:
    """One failing case: class word, where, the rule and the first line of its message (a FAIL's
    message opens with its rule already). CODE quotes the case name (Markdown's backtick)."""
    message = (case.message or "").strip().splitlines()
    first = message[0] if message else ""
    rule = f"{case.rule}: " if case.rule and not first.startswith(f"{case.rule}:") else ""
    where = f"{short.get(case.kernel, case.kernel)} {code}{case.test}[{case.case_id}]{code}"
    return f"{WORDS[case.case_class]} ({case.case_class}) {where}: {rule}{first}".rstrip()


def render_overview(results: Results, width: int = TERMINAL_WIDTH, wrap_summary: bool = True) -> list[str]:
    """The first screen: summary, kernels, one row per rule and one column per kernel, failures.
    Without WRAP_SUMMARY the summary stays one line, whatever its length (what a bot pastes)."""
    names = [str(k["name"]) for k in results.kernels]
    short = short_names(results)
    rule_width = 18
    statement_width = max(0, width - 2 - rule_width - (OVERVIEW_CELL + 1) * len(names) - 1)
    lines = [*(textwrap.wrap(summary_line(results), width) if wrap_summary else [summary_line(results)]), ""]
    lines += [_fit("  " + kernel_line(i, k), width) for i, k in enumerate(results.kernels, 1)]
    lines += [_fit(f"  by {results.tool}", width)]
    gaps = incomplete_lines(results)
    if gaps:
        lines += [
            "",
            gaps[0],
            *(line for gap in gaps[1:] for line in textwrap.wrap(gap, width, initial_indent="  ", subsequent_indent="    ")),
        ]
    lines += ["", "  " + f"{'rule':<{rule_width}}" + "".join(f" {short[n]:>{OVERVIEW_CELL}}" for n in names)]
    spec = None
    for row in overview(results):
        if row.spec != spec:
            spec = row.spec
            if spec != results.primary:
                lines += [_fit(f"  spec {spec} (only its own rules):", width)]
        cell_text = "".join(f" {row.cells[n].text() if n in row.cells else NOT_PLANNED:>{OVERVIEW_CELL}}" for n in names)
        statement = f" {_fit(row.statement, statement_width)}" if statement_width > 8 and row.statement else ""
        lines.append(f"  {_fit(row.rule, rule_width):<{rule_width}}{cell_text}{statement}".rstrip())
    lines += ["", *textwrap.wrap(OVERVIEW_LEGEND, width)]
    bad = failures(results)
    if bad:
        lines += ["", "Failing cases (worst class first):"]
        for case in bad:
            lines += textwrap.wrap(failure_line(case, short), width, initial_indent="  ", subsequent_indent="      ")
    again = retried(results)
    if again:
        lines += ["", f"Cases whose call needed more than one attempt ({RETRIED_MARK} in the overview):"]
        lines += [_fit("  " + retried_line(case, short), width) for case in again]
    return lines


def render_summary(results: Results, width: int = TERMINAL_WIDTH) -> str:
    """What the terminal shows (summary.txt): the overview, not every case. Its first line is the
    one-line summary, unwrapped; everything under it fits WIDTH columns."""
    return "\n".join(render_overview(results, width, wrap_summary=False)) + "\n"


def render_text(results: Results, width: int = TERMINAL_WIDTH) -> str:
    """matrix.txt: the overview, then every case grouped by spec and rule, kernel columns numbered."""
    rows = build(results)
    names = [str(k["name"]) for k in results.kernels]
    short = short_names(results)
    statements = results.statements
    label_width = max(12, width - 4 - 6 * len(names))
    lines = render_overview(results, width)
    lines += ["", "Every case:", " " * (4 + label_width) + "".join(f"{short[n]:>6}" for n in names)]
    spec = group = rule = None
    for row in rows:
        if row.spec != spec:
            spec, group, rule = row.spec, None, None
            if spec != results.primary:
                lines += ["", _fit(f"== spec {spec}: only its own rules (elsewhere it inherits {results.primary}) ==", width)]
        if row.group != group:
            group, rule = row.group, None
            lines.append(group)
        if row.rule != rule:
            rule = row.rule
            lines.append(_fit(f"  {rule}: {statements.get(rule, '')}".rstrip(), width))
        cell_words = "".join(f"{row.word(n, results):>6}" for n in names)
        lines.append(f"    {_fit(row.label(short), label_width):<{label_width}}{cell_words}")
    lines += ["", *textwrap.wrap(LEGEND, width)]
    lines += render_changes(results, width)
    return "\n".join(lines) + "\n"


def render_changes(results: Results, width: int = TERMINAL_WIDTH) -> list[str]:
    """Which of the rule book's changes each kernel has, and how that was decided: the rules'
    bounds mean before or after a change, so this is why two kernels of one version may differ."""
    names = [str(k["name"]) for k in results.kernels]
    table = {name: presence_of(k) for name, k in zip(names, results.kernels, strict=True)}
    keys = sorted({key for presence in table.values() for key in presence})
    if not keys:
        return []
    short = short_names(results)
    key_width = max(len(k) for k in keys) + 2
    lines = ["", "Changes per kernel (+ has, - lacks; decided by g = git history, c = Debian changelog, r = release, a = --assume):"]
    lines.append(" " * key_width + "".join(f"{short[n]:>6}" for n in names))
    for key in keys:
        cells = "".join(f"{_presence_cell(table[n].get(key)):>6}" for n in names)
        lines.append(f"{key:<{key_width}}{cells}")
    backports = [
        f"{short[n]} {key}: {p['evidence']}"
        for n in names
        for key, p in sorted(table[n].items())
        if p.get("basis") in ("git history", "Debian changelog", "assumed") and p.get("present")
    ]
    lines += ["Backports and assumptions:", *(_fit(f"  {line}", width) for line in backports)] if backports else []
    return lines


def _presence_cell(presence: dict[str, object] | None) -> str:
    if presence is None:
        return NOT_PLANNED
    basis = {"git history": "g", "Debian changelog": "c", "release": "r", "assumed": "a"}.get(str(presence.get("basis")), "?")
    return ("+" if presence.get("present") else "-") + basis


OVERVIEW_LEGEND = (
    "Overview cells: the worst class among the rule's cases on that kernel, with counts of the judged "
    "(not skipped) cases: PASS 12 = all 12 passed; FAIL 2/12 = 2 of the 12 are regressions. "
    "FAIL = regression (the kernel broke an agreed rule), ERROR = infrastructure (no observation: boot, "
    "agent or set-up failure; not a verdict on the kernel), FLAKY = repeats disagree, DOC = documentation "
    f"discrepancy, SPEC = FAIL of a further spec (not a regression), SKIP = not applicable, {NOT_PLANNED} = not planned, "
    f"{NOT_RUN_WORD} 3/12 = 3 of the 12 planned cases not run (the run did not finish); "
    f"{RETRIED_MARK} = a case there needed more than one call (EAGAIN, retried): worth a look on a stable set-up."
)
LEGEND = (
    "Every-case cells use the same words. [n] = kernel column; (RULE@[n]) = decided by RULE on that kernel; "
    "a label ending in … is cut to fit."
)


def render_markdown(results: Results) -> str:
    rows = build(results)
    labels = results.display_names
    names = [str(k["name"]) for k in results.kernels]
    columns = " | ".join(f"{labels[n]} {k['version']}" for n, k in zip(names, results.kernels, strict=True))
    gaps = incomplete_lines(results)
    out = [f"# {summary_line(results)}", "", f"Reported by {results.tool}."]
    out += ["", f"## {gaps[0].rstrip(':')}", "", *gaps[1:]] if gaps else []
    out += [
        "",
        "## Overview",
        "",
        f"| spec | rule | {columns} | statement |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for orow in overview(results):
        cell_texts = " | ".join(
            _md_cell(orow.cells[n].headline, orow.cells[n].text(reasons=True)) if n in orow.cells else NOT_PLANNED for n in names
        )
        out.append(f"| {orow.spec} | {orow.rule} | {cell_texts} | {orow.statement} |")
    out += ["", OVERVIEW_LEGEND]
    bad = failures(results)
    if bad:
        out += ["", "## Failing cases", ""]
        out += [f"- {failure_line(case, labels, code='`')}" for case in bad]
    again = retried(results)
    if again:
        out += ["", "## Cases whose call needed more than one attempt", ""]
        out += [f"- {retried_line(case, labels)}" for case in again]
    out += ["", "## Every case", "", f"| spec | group | rule | case | {columns} |", "|---|---|---|---|" + "---|" * len(names)]
    for row in rows:
        cell_texts = " | ".join(_md_cell(row.cells[n], WORDS[row.cells[n]]) if n in row.cells else row.word(n, results) for n in names)
        out.append(f"| {row.spec} | {row.group} | {row.rule} | `{row.test}[{row.label(labels)}]` | {cell_texts} |")
    return "\n".join(out) + "\n"


def _md_cell(case_class: CaseClass, text: str) -> str:
    return f"**{text}**" if case_class in (CaseClass.REGRESSION, CaseClass.INFRASTRUCTURE, CaseClass.FLAKY) else text
