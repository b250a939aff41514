"""Plain text for a linux-mm email: at most 72 columns. It opens with the Subject header (the one-line
summary, folded); then the kernels with their source, each class of failure grouped by kernel, rule and
outcome (regressions first) with the command that reproduces it, then the failing rules only."""

from __future__ import annotations

import shlex
import textwrap

from reports.matrix import kernel_line, mismatches
from reports.record import CaseClass, CaseRecord, Results
from reports.summary import cell_class, cells, failures, incomplete_lines, retried, retried_line, summary_line

WIDTH = 72
SECTIONS = [c for c in CaseClass if c.is_failure]


def wrap(text: str, indent: str = "", subsequent: str | None = None) -> list[str]:
    """TEXT in lines of at most 72 columns (also the series reply's)."""
    follow = indent if subsequent is None else subsequent
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=follow, break_on_hyphens=False) or [indent]


def _describe(values: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items()) or "-"


def reproduce_command(case: CaseRecord, kernel: dict[str, object], specs: list[str]) -> str:
    """The pytest command that runs this one case again on this kernel (from the suite's checkout)."""
    spec_args = [arg for spec in dict.fromkeys([specs[0], case.spec]) for arg in ("--spec", spec)]
    words = [".tox/matrix/bin/pytest", "suites/test_collapse.py", "--kernel", str(kernel.get("origin", case.kernel)), *spec_args]
    return shlex.join([*words, "-k", k_word(case)])


def k_word(case: CaseRecord) -> str:
    """The case as one pytest -k word: a substring of its item's name, test_TEST[CASE_ID] (the case id
    names its kernel's label, so the parameters alone would match no item)."""
    return f"{case.test}[{case.case_id}]"


def render_email(results: Results) -> str:
    kernels = results.kernels
    short = {str(k["name"]): f"[{i}]" for i, k in enumerate(kernels, 1)}
    by_name = {str(k["name"]): k for k in kernels}
    statements = results.statements
    bad = failures(results)
    # The summary is the Subject, folded as RFC 5322 folds a long header (continuations start with a
    # space), so every line fits 72 columns and a mail parser still reads one line.
    lines = [*wrap(f"Subject: {summary_line(results)}", "", " "), "", "Kernels:"]
    for index, kernel in enumerate(kernels, 1):
        lines += wrap(kernel_line(index, kernel), "  ", "      ")
    lines += wrap(f"Specs: {' + '.join(results.specs)}; rule book {results.rule_book}; run {results.run.get('run_id')}", "", "  ")
    lines += wrap(f"Tool: {results.tool}", "", "  ")
    gaps = incomplete_lines(results)
    if gaps:
        lines += ["", *wrap(gaps[0]), *(line for gap in gaps[1:] for line in wrap(gap, "  ", "    "))]
    for cls in SECTIONS:
        listed = [c for c in bad if c.case_class is cls]
        if not listed:
            continue
        lines += ["", f"{cls.heading}:"]
        # One entry per kernel, rule and outcome: a rule broken the same way in eight cases is one finding.
        grouped: dict[tuple[str, str, str], list[CaseRecord]] = {}
        for case in listed:
            if case.verdict == "FAIL":
                expected, observed = mismatches(case)
                outcome = f"expected: {_describe(expected)}\nobserved: {_describe(observed)}"
            else:
                message = (case.message or "").strip().splitlines()
                outcome = f"{case.verdict}: {message[-1] if message else ''}"
            grouped.setdefault((case.kernel, str(case.rule), outcome), []).append(case)
        for (kernel_name, rule, outcome), cases in grouped.items():
            kernel = by_name.get(kernel_name, {})
            count = f"{len(cases)} cases" if len(cases) > 1 else "1 case"
            where = f"{short.get(kernel_name, '?')} {kernel.get('release', kernel_name)}"
            lines += wrap(f"- {where}, rule {rule} ({count})", "", "    ")
            lines += wrap(statements.get(rule, ""), "    ")
            for part in outcome.splitlines():
                lines += wrap(part, "    ", "      ")
            # One -k word a line, never cut (a longer one passes 72 columns, as a URL would): the
            # lines pasted between quotes are one -k expression.
            words = [k_word(c) for c in cases]
            lines += ["    cases (pytest -k):", *(f"      {word}{' or' if i < len(words) - 1 else ''}" for i, word in enumerate(words))]
            if cls in (CaseClass.REGRESSION, CaseClass.FLAKY):
                lines += ["    reproduce:", *wrap(reproduce_command(cases[0], kernel, results.specs), "      ", "        ")]
    failing_rules = _failing_rules(results)
    if failing_rules:
        names = [str(k["name"]) for k in kernels]
        lines += ["", "Failing rules (failed/judged cases per kernel):", f"  {'rule':<20}" + "".join(f"{short[n]:>7}" for n in names)]
        for rule, per_kernel in failing_rules.items():
            lines.append(f"  {rule[:20]:<20}" + "".join(f"{per_kernel.get(n, '-'):>7}" for n in names))
    again = retried(results)
    if again:
        lines += ["", "Cases whose call needed more than one attempt (EAGAIN retried):"]
        for case in again:
            lines += wrap(retried_line(case, short), "  ", "      ")
    lines += ["", *wrap("Reports with every case, its parameters and the guest's observations: results.json, matrix.txt, report.html.")]
    return "\n".join(lines) + "\n"


def _failing_rules(results: Results) -> dict[str, dict[str, str]]:
    """rule -> kernel -> 'failed/judged', for rules with a regression, error or flaky case somewhere."""
    tally: dict[str, dict[str, list[int]]] = {}
    for (_, kernel), records in cells(results).items():
        cls = cell_class(records)
        if cls is CaseClass.SKIP:
            continue
        counts = tally.setdefault(records[-1].rule or "-", {}).setdefault(kernel, [0, 0])
        counts[0] += cls in (CaseClass.REGRESSION, CaseClass.INFRASTRUCTURE, CaseClass.FLAKY)
        counts[1] += 1
    return {
        rule: {k: f"{failed}/{judged}" for k, (failed, judged) in per_kernel.items()}
        for rule, per_kernel in sorted(tally.items())
        if any(failed for failed, _ in per_kernel.values())
    }
