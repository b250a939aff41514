"""Plain text for a linux-mm email: at most 72 columns, regressions first, then failing rules only."""

from __future__ import annotations

import textwrap

from reports.matrix import DOCUMENTATION, FLAKY, OTHER_SPEC, REGRESSION, build, failures, kernel_line, mismatches, specs_of

WIDTH = 72
SECTIONS = {
    REGRESSION: "Regressions (the kernel breaks an agreed rule)",
    FLAKY: "Flaky cases (repeats disagree)",
    DOCUMENTATION: "Documentation discrepancies (kernel vs man page / transhuge.rst)",
    OTHER_SPEC: "Differences from the other specs checked (not regressions)",
}


def _wrap(text: str, indent: str = "", subsequent: str | None = None) -> list[str]:
    follow = indent if subsequent is None else subsequent
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=follow, break_on_hyphens=False) or [indent]


def _describe(values: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items()) or "-"


def render_email(document: dict[str, object]) -> str:
    kernels, rows = build(document)
    short = {str(k["name"]): f"[{i}]" for i, k in enumerate(kernels, 1)}
    by_name = {str(k["name"]): k for k in kernels}
    statements: dict[str, str] = document["run"].get("rules", {})  # type: ignore[union-attr]
    bad = failures(document)
    regressions = [c for c in bad if c["class"] == REGRESSION]
    hit = sorted({str(c["kernel"]) for c in regressions}, key=lambda n: short[n])
    run: dict[str, object] = document["run"]  # type: ignore[assignment]
    primary = specs_of(document)[0]
    summary = (
        f"MADV_COLLAPSE conformance: {len(regressions)} regressions on {len(hit)} of {len(kernels)} kernels "
        f"({primary} spec, rule book {run['rule_book']}, {sum(len(r.cells) for r in rows if r.spec == primary)} cases)"
    )
    lines = [*_wrap(summary), "", "Kernels:"]
    for index, kernel in enumerate(kernels, 1):
        lines += _wrap(kernel_line(index, kernel), "  ", "      ")
    for cls, title in SECTIONS.items():
        listed = [c for c in bad if c["class"] == cls]
        if not listed:
            continue
        lines += ["", f"{title}:"]
        # One entry per kernel, rule and outcome: a rule broken the same way in eight cases is one finding.
        grouped: dict[tuple[str, str, str, str], list[dict[str, object]]] = {}
        for case in listed:
            expected, observed = mismatches(case) if case["verdict"] == "FAIL" else ({}, {})
            outcome = f"expected: {_describe(expected)}\nobserved: {_describe(observed)}" if case["verdict"] == "FAIL" else _last_line(case)
            grouped.setdefault((str(case["kernel"]), str(case["rule"]), str(case["verdict"]), outcome), []).append(case)
        for (kernel_name, rule, verdict, outcome), cases in grouped.items():
            kernel = by_name.get(kernel_name, {})
            count = f"{len(cases)} cases" if len(cases) > 1 else "1 case"
            where = f"{short.get(kernel_name, '?')} {kernel.get('release', kernel_name)}"
            lines += _wrap(f"- {where}, rule {rule}, {verdict} ({count})", "", "    ")
            lines += _wrap(statements.get(rule, ""), "    ")
            for part in outcome.splitlines():
                lines += _wrap(part, "    ", "      ")
            names = ", ".join(f"{c['test']}[{c['params_id']}]" for c in cases)
            lines += _wrap(f"cases: {names}", "    ", "      ")
    failing_rules = _failing_rules(rows, [str(k["name"]) for k in kernels])
    if failing_rules:
        names = [str(k["name"]) for k in kernels]
        lines += ["", "Failing rules (failed/run cases per kernel):", f"  {'rule':<20}" + "".join(f"{short[n]:>7}" for n in names)]
        for rule, counts in failing_rules.items():
            cells = "".join(f"{counts.get(n, '-'):>7}" for n in names)
            lines.append(f"  {rule[:20]:<20}{cells}")
    lines += ["", *_wrap("Reports with every case, its parameters and the guest's observations: results.json, matrix.txt, report.html.")]
    return "\n".join(lines) + "\n"


def _last_line(case: dict[str, object]) -> str:
    message = str(case.get("message") or "").strip().splitlines()
    return f"{case['verdict']}: {message[-1] if message else ''}"


def _failing_rules(rows: list, names: list[str]) -> dict[str, dict[str, str]]:  # type: ignore[type-arg]
    """rule -> kernel -> 'failed/run', for rules with a FAIL or ERROR somewhere."""
    counts: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        for kernel, cell in row.cells.items():
            if cell == "SKIP":
                continue
            tally = counts.setdefault(row.rules[kernel], {}).setdefault(kernel, [0, 0])
            tally[0] += cell in ("FAIL", "ERROR", "FLAKY")
            tally[1] += 1
    return {
        rule: {k: f"{bad}/{run}" for k, (bad, run) in per_kernel.items()}
        for rule, per_kernel in sorted(counts.items())
        if any(bad for bad, _ in per_kernel.values())
    }
