"""The pass/fail matrix: rows are cases grouped by spec and rule, columns are kernel builds.

This module holds the model every format shares (rows, totals, failures and how each failure is
classed) and renders the terminal matrix (at most 100 columns) and Markdown.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass, field

from reports.results import VERDICTS

NOT_RUN = "·"
TERMINAL_WIDTH = 100
# Failure classes, in the order reports list them.
REGRESSION, DOCUMENTATION, OTHER_SPEC, FLAKY = "regression", "documentation", "other spec", "flaky"


@dataclass
class Row:
    spec: str
    test: str
    params: str
    rules: dict[str, str] = field(default_factory=dict)  # kernel -> deciding rule
    groups: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, list[str]] = field(default_factory=dict)  # kernel -> verdict of each repeat
    cases: dict[str, dict[str, object]] = field(default_factory=dict)  # kernel -> last record

    @property
    def cells(self) -> dict[str, str]:
        return {kernel: combine(v) for kernel, v in self.verdicts.items()}

    def _deciding(self) -> dict[str, str]:
        """Rules that produced a verdict; a rule that only skips (X0 before 6.1) names no row."""
        ran = {k: r for k, r in self.rules.items() if self.cells.get(k) != "SKIP"}
        return ran or self.rules

    @property
    def rule(self) -> str:
        """The rule deciding this case on most kernels (ties: the newest, rightmost)."""
        deciding = list(self._deciding().values())
        counts = Counter(deciding)
        return max(reversed(deciding), key=lambda r: counts[r]) if deciding else "-"

    @property
    def group(self) -> str:
        return next((g for k, g in self.groups.items() if self.rules[k] == self.rule), "unruled")

    def label(self, short: dict[str, str]) -> str:
        others = sorted({f"{r}@{short[k]}" for k, r in self._deciding().items() if r != self.rule})
        return self.params + (f" ({', '.join(others)})" if others else "")


def specs_of(document: dict[str, object]) -> list[str]:
    """The run's specs, the fully checked one first (older runs name one spec)."""
    run: dict[str, object] = document["run"]  # type: ignore[assignment]
    return list(run.get("specs") or [str(run.get("spec", "upstream"))])  # type: ignore[call-overload]


def build(document: dict[str, object]) -> tuple[list[dict[str, object]], list[Row]]:
    kernels: list[dict[str, object]] = document["kernels"]  # type: ignore[assignment]
    primary = specs_of(document)[0]
    rows: dict[tuple[str, str, str], Row] = {}
    for case in document["cases"]:  # type: ignore[union-attr]
        spec = str(case.get("spec") or primary)
        key = (spec, case["test"], case["params_id"])
        row = rows.setdefault(key, Row(spec=spec, test=case["test"], params=case["params_id"]))
        row.rules[case["kernel"]] = case["rule"] or "-"
        row.groups[case["kernel"]] = case["group"]
        row.verdicts.setdefault(case["kernel"], []).append(case["verdict"])
        row.cases[case["kernel"]] = case
    order = {spec: index for index, spec in enumerate(specs_of(document))}
    ordered = sorted(rows.values(), key=lambda r: (order.get(r.spec, len(order)), r.group, r.rule, r.test, r.params))
    return kernels, ordered


def combine(verdicts: list[str]) -> str:
    """One cell from its repeats: their common verdict, or FLAKY when they disagree."""
    return verdicts[0] if len(set(verdicts)) == 1 else "FLAKY"


def totals(document: dict[str, object], spec: str | None = None) -> Counter[str]:
    """Verdicts per cell (case x kernel), repeats combined; of one spec, or of all."""
    _, rows = build(document)
    return Counter(verdict for row in rows if spec in (None, row.spec) for verdict in row.cells.values())


def failure_class(case: dict[str, object], primary: str) -> str:
    """A FAIL or ERROR of the fully checked spec is a regression; one of a rule stating what the
    documentation says is a documentation discrepancy; one of another spec (proposal) is not."""
    if case.get("group") == "documentation":
        return DOCUMENTATION
    if str(case.get("spec") or primary) != primary:
        return OTHER_SPEC
    return REGRESSION


def header(document: dict[str, object]) -> str:
    run: dict[str, object] = document["run"]  # type: ignore[assignment]
    primary = specs_of(document)[0]
    count = totals(document, primary)
    summary = ", ".join(f"{count[v]} {v}" for v in VERDICTS if v != "FLAKY" or count[v])
    repeats = f" x{run['repeat']} repeats" if int(run.get("repeat", 1)) > 1 else ""  # type: ignore[call-overload]
    extra = "".join(f"; {s}: {totals(document, s)['FAIL']} FAIL of {sum(totals(document, s).values())}" for s in specs_of(document)[1:])
    return (
        f"MADV_COLLAPSE conformance: spec {primary}, rule book {run['rule_book']}, run {run['run_id']}, "
        f"{sum(count.values())} cases{repeats} on {len(document['kernels'])} kernels: {summary}{extra}"  # type: ignore[arg-type]
    )


def failures(document: dict[str, object]) -> list[dict[str, object]]:
    """FAIL and ERROR records, each with its class, and one entry per FLAKY cell listing its repeats."""
    kernels, rows = build(document)
    primary = specs_of(document)[0]
    listed = []
    for row in rows:
        for kernel, verdicts in row.verdicts.items():
            case = row.cases[kernel]
            if combine(verdicts) == "FLAKY":
                message = f"repeats disagree: {', '.join(verdicts)}"
                listed.append({**case, "verdict": "FLAKY", "message": message, "class": FLAKY})
            elif case["verdict"] in ("FAIL", "ERROR"):
                listed.append({**case, "class": failure_class(case, primary)})
    order = {k: i for i, k in enumerate([REGRESSION, FLAKY, DOCUMENTATION, OTHER_SPEC])}
    position = {str(k["name"]): i for i, k in enumerate(kernels)}
    return sorted(listed, key=lambda c: (order[str(c["class"])], position.get(str(c["kernel"]), 0), str(c["case_id"])))


def mismatches(case: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(expected, observed) restricted to the quantities that differ."""
    expected: dict[str, object] = {"data": "intact", "vmflags": "unchanged", "views": "agree", **(case.get("expected") or {})}  # type: ignore[dict-item]
    observed: dict[str, object] = case.get("observed") or {}  # type: ignore[assignment]
    keys = [k for k, v in expected.items() if k in observed and observed[k] != v]
    return {k: expected[k] for k in keys}, {k: observed[k] for k in keys}


def kernel_line(index: int, kernel: dict[str, object]) -> str:
    extra = ", ".join(f"{key} {kernel[key]}" for key in ("accel", "boot_s") if kernel.get(key) is not None)
    return f"[{index}] {kernel['label']}: {kernel['version']} ({kernel['release']}, build {kernel['build_id']}) {extra}".rstrip()


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(document: dict[str, object], width: int = TERMINAL_WIDTH) -> str:
    """The terminal matrix: rows grouped by spec and rule, kernel columns numbered, at most WIDTH columns."""
    kernels, rows = build(document)
    names = [str(k["name"]) for k in kernels]
    short = {str(k["name"]): f"[{i}]" for i, k in enumerate(kernels, 1)}
    statements: dict[str, str] = document["run"].get("rules", {})  # type: ignore[union-attr]
    cells_width = 6 * len(names)
    label_width = max(12, width - 4 - cells_width)
    primary = specs_of(document)[0]
    lines = [*textwrap.wrap(header(document), width), ""]
    lines += [_fit("  " + kernel_line(i, k), width) for i, k in enumerate(kernels, 1)]
    lines += ["", " " * (4 + label_width) + "".join(f"{short[n]:>6}" for n in names)]
    spec = group = rule = None
    for row in rows:
        if row.spec != spec:
            spec, group, rule = row.spec, None, None
            if spec != primary:
                lines += ["", _fit(f"== spec {spec}: only its own rules (elsewhere it inherits {primary}) ==", width)]
        if row.group != group:
            group, rule = row.group, None
            lines.append(group)
        if row.rule != rule:
            rule = row.rule
            lines.append(_fit(f"  {rule}: {statements.get(rule, '')}".rstrip(), width))
        cells = "".join(f"{row.cells.get(n, NOT_RUN):>6}" for n in names)
        lines.append(f"    {_fit(row.label(short), label_width):<{label_width}}{cells}")
    lines += ["", *textwrap.wrap(LEGEND, width)]
    bad = failures(document)
    if bad:
        lines += ["", "Failures and errors (regressions first):"]
        for case in bad:
            where = f"{short.get(str(case['kernel']), case['kernel'])} {case['test']}[{case['case_id']}]"
            text = f"{case['verdict']} ({case['class']}) {where}: {case['message']}"
            lines += textwrap.wrap(text.splitlines()[0], width, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"


LEGEND = (
    "Legend: PASS, FAIL (the kernel broke the rule), ERROR (no observation: boot, agent or set-up failure), "
    f"SKIP (not applicable, with a reason), FLAKY (repeats disagree), {NOT_RUN} (not planned). "
    "[n] = kernel column; (RULE@[n]) = decided by RULE on that kernel; a label ending in … is cut to fit."
)


def render_markdown(document: dict[str, object]) -> str:
    kernels, rows = build(document)
    short = {str(k["name"]): str(k["label"]) for k in kernels}
    names = [str(k["name"]) for k in kernels]
    out = [f"# {header(document)}", ""]
    columns = " | ".join(f"{short[n]} {k['version']}" for n, k in zip(names, kernels, strict=False))
    out.append(f"| spec | group | rule | case | {columns} |")
    out.append("|---|---|---|---|" + "---|" * len(names))
    for row in rows:
        cells = " | ".join(_md_cell(row.cells.get(n, NOT_RUN)) for n in names)
        out.append(f"| {row.spec} | {row.group} | {row.rule} | `{row.test}[{row.label(short)}]` | {cells} |")
    bad = failures(document)
    if bad:
        out += ["", "## Failures and errors", ""]
        for case in bad:
            message = str(case["message"]).splitlines()[0] if case["message"] else ""
            where = f"{short.get(str(case['kernel']), case['kernel'])} `{case['test']}[{case['case_id']}]`"
            out.append(f"- **{case['verdict']}** ({case['class']}) {where} {case['rule']}: {message}")
    return "\n".join(out) + "\n"


def _md_cell(verdict: str) -> str:
    return f"**{verdict}**" if verdict in ("FAIL", "ERROR", "FLAKY") else verdict
