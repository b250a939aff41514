"""What a run comes to, read from the stored classes: the one-line summary, the exit status, the
per-case cells (repeats combined), the overview (one row per rule, one column per kernel) and the
failures listed under it. Every human-facing format opens with these."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field

from reports.exits import Exit, judged_exit
from reports.record import WORDS, CaseClass, CaseRecord, Results, combine_repeats, worst

CaseKey = tuple[str, str, str]  # spec, test, parameters: one case, its repeats and kernels aside
# Marks an overview cell holding a case whose call got EAGAIN and was retried: the retry hides a
# kernel that starts returning EAGAIN on a stable set-up, so it is shown, not only counted.
RETRIED_MARK = "*"


def case_key(case: CaseRecord) -> CaseKey:
    return (case.spec, case.test, case.params_id)


# Summary lines' status word; a regression in a run that did not finish says both.
STATUS_WORDS = {
    Exit.REGRESSION: "REGRESSION",
    Exit.INCOMPLETE: "INCOMPLETE",
    Exit.INFRASTRUCTURE: "ERROR",
    Exit.CLEAN: "CLEAN",
    Exit.NOTHING_COMPARED: "NOTHING COMPARED",
}
# Marks a cell (case x kernel) the run planned but has no record of: the run did not finish.
NOT_RUN_WORD = "MISS"


def exit_status(results: Results) -> Exit:
    classes = results.classes()
    return judged_exit(bool(classes[CaseClass.REGRESSION]), bool(classes[CaseClass.INFRASTRUCTURE]), results.completeness.incomplete)


def status_word(status: Exit, incomplete: bool) -> str:
    return STATUS_WORDS[status] + (" (INCOMPLETE)" if incomplete and status is Exit.REGRESSION else "")


def cells(results: Results) -> dict[tuple[CaseKey, str], list[CaseRecord]]:
    """(case, kernel) -> the records of its repeats, in run order."""
    grouped: dict[tuple[CaseKey, str], list[CaseRecord]] = {}
    for case in results.cases:
        grouped.setdefault((case_key(case), case.kernel), []).append(case)
    return grouped


def cell_class(records: list[CaseRecord]) -> CaseClass:
    return combine_repeats([r.case_class for r in records])


def seen(results: Results, case_class: CaseClass) -> int:
    """Cells (case x kernel) where at least one repeat has CASE_CLASS: a regression seen once is
    counted (and the exit status is 1) even when its other repeats passed and the cell is FLAKY."""
    return sum(any(r.case_class is case_class for r in records) for records in cells(results).values())


def counts(results: Results, spec: str | None = None) -> Counter[CaseClass]:
    """Classes per cell (case x kernel), repeats combined; of one spec, or of all."""
    return Counter(cell_class(records) for (key, _), records in cells(results).items() if spec in (None, key[0]))


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def summary_line(results: Results) -> str:
    """One line a bot can paste: the status, then the counts that matter, then what was run."""
    status = status_word(exit_status(results), results.completeness.incomplete)
    primary = counts(results, results.primary)
    every = counts(results)
    found = [
        _plural(seen(results, CaseClass.REGRESSION), "regression"),
        _plural(seen(results, CaseClass.INFRASTRUCTURE), "infrastructure error"),
    ]
    found += [_plural(every[c], word) for c, word in ((CaseClass.FLAKY, "flaky case"),) if every[c]]
    found += (
        [_plural(every[CaseClass.DOCUMENTATION], "documentation discrepancy", "documentation discrepancies")]
        if every[CaseClass.DOCUMENTATION]
        else []
    )
    found += [f"{every[CaseClass.OTHER_SPEC]} FAIL of {' + '.join(results.specs[1:])}"] if every[CaseClass.OTHER_SPEC] else []
    repeat = results.repeat
    return (
        f"MADV_COLLAPSE conformance {status}: {', '.join(found)}; "
        f"{primary[CaseClass.PASS]} pass, {primary[CaseClass.SKIP]} skip of {_plural(sum(primary.values()), results.primary + ' case')}"
        + (f" x{repeat}" if repeat > 1 else "")
        + f" on {kernels_run(results)}"
        + "".join(f"; {gap}" for gap in results.completeness.gaps())
        + f" (rule book {results.rule_book}, run {results.run.get('run_id')})"
    )


def kernels_run(results: Results) -> str:
    """'2 kernels', or '2 of 4 planned kernels' when some never ran."""
    missing = len(results.completeness.kernels_not_run)
    return (
        f"{len(results.kernels)} of {len(results.kernels) + missing} planned kernels"
        if missing
        else _plural(len(results.kernels), "kernel")
    )


def incomplete_lines(results: Results) -> list[str]:
    """What the run left undone, one line each, under a heading (empty for a complete run): every
    human report prints these, from results.completeness."""
    gaps = results.completeness.gaps()
    return [f"Incomplete run ({NOT_RUN_WORD} = planned but not run):", *(f"- {gap}" for gap in gaps)] if gaps else []


@dataclass
class OverviewCell:
    classes: Counter[CaseClass] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    retried: int = 0  # cases whose call needed more than one attempt (EAGAIN)
    not_run: int = 0  # cases planned on this kernel without a record (the run did not finish)

    @property
    def headline(self) -> CaseClass:
        return worst(self.classes)

    @property
    def shows_not_run(self) -> bool:
        """Cases not run outrank everything but a regression, an error or a flaky case: a PASS over
        half a rule's cases is not a pass of the rule."""
        return bool(self.not_run) and (not self.classes or self.headline not in FAILING)

    @property
    def judged(self) -> int:
        return sum(n for c, n in self.classes.items() if c is not CaseClass.SKIP)

    @property
    def word(self) -> str:
        return NOT_RUN_WORD if self.shows_not_run else WORDS[self.headline]

    def text(self, reasons: bool = False) -> str:
        """'PASS 12', 'FAIL 2/12', 'SKIP' (with reasons: 'SKIP: no 6.8 knobs')."""
        head = self.headline
        mark = RETRIED_MARK if self.retried else ""
        if self.shows_not_run:
            return f"{NOT_RUN_WORD} {self.not_run}/{self.judged + self.not_run}{mark}"
        if head is CaseClass.SKIP:
            reason = self.skip_reasons.most_common(1)[0][0] if reasons and self.skip_reasons else ""
            return f"SKIP: {reason}" if reason else "SKIP"
        if head is CaseClass.PASS:
            return f"PASS {self.judged}{mark}"
        return f"{WORDS[head]} {self.classes[head]}/{self.judged}{mark}"


@dataclass
class OverviewRow:
    spec: str
    rule: str
    group: str
    statement: str
    cells: dict[str, OverviewCell] = field(default_factory=dict)  # kernel name -> cell

    @property
    def headline(self) -> CaseClass:
        return worst(cell.headline for cell in self.cells.values() if cell.classes)


def overview(results: Results) -> list[OverviewRow]:
    """One row per (spec, deciding rule), rules in natural id order within each spec, the first spec first."""
    rows: dict[tuple[str, str], OverviewRow] = {}
    statements = results.statements
    for (key, kernel), records in cells(results).items():
        first = records[0]
        rule = first.rule or "-"
        row = rows.setdefault((key[0], rule), OverviewRow(key[0], rule, first.group, statements.get(rule, "")))
        cell = row.cells.setdefault(kernel, OverviewCell())
        cls = cell_class(records)
        cell.classes[cls] += 1
        cell.retried += any(r.attempts > 1 for r in records)
        if cls is CaseClass.SKIP and first.message:
            cell.skip_reasons[first.message] += 1
    rule_of = {case_key(c): c.rule or "-" for c in results.cases}  # a case not run on one kernel: its rule where it ran
    for key, kernel in results.completeness.not_run:
        planned_row = rows.get((key[0], rule_of.get(key, "-")))
        if planned_row is not None:
            planned_row.cells.setdefault(kernel, OverviewCell()).not_run += 1
    spec_order = {spec: i for i, spec in enumerate(results.specs)}
    return sorted(rows.values(), key=lambda r: (spec_order.get(r.spec, len(spec_order)), natural(r.rule)))


FAILING = (CaseClass.REGRESSION, CaseClass.INFRASTRUCTURE, CaseClass.FLAKY)


def natural(rule: str) -> list[object]:
    """Rule ids in reading order, A8 before A10 (results.json keeps no rule-book order: keys are sorted)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", rule)]


def failures(results: Results) -> list[CaseRecord]:
    """Every case to list under the overview: its stored class is not pass or skip, or its repeats
    disagree (then one FLAKY entry listing them). Worst class first, then kernel order."""
    listed = []
    for records in cells(results).values():
        last = records[-1]
        combined = cell_class(records)
        if combined is CaseClass.FLAKY:
            message = f"repeats disagree: {', '.join(str(r.case_class) for r in records)}"
            listed.append(dataclasses.replace(last, case_class=CaseClass.FLAKY, message=message))
        elif combined.is_failure:
            listed.append(last)
    order = list(CaseClass)
    position = {str(k["name"]): i for i, k in enumerate(results.kernels)}
    return sorted(listed, key=lambda c: (order.index(c.case_class), position.get(c.kernel, 0), c.case_id))


def retried(results: Results) -> list[CaseRecord]:
    """Cases whose MADV_COLLAPSE call needed more than one attempt (EAGAIN retried), kernel order."""
    position = {str(k["name"]): i for i, k in enumerate(results.kernels)}
    return sorted((c for c in results.cases if c.attempts > 1), key=lambda c: (position.get(c.kernel, 0), c.case_id))


def retried_line(case: CaseRecord, short: dict[str, str]) -> str:
    return f"{short.get(case.kernel, case.kernel)} {case.test}[{case.case_id}]: {case.attempts} calls (EAGAIN retried), {case.case_class}"
