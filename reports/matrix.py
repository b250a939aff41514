"""The pass/fail matrix: rows are cases grouped by rule, columns are kernel builds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from reports.results import VERDICTS

NOT_RUN = "·"


@dataclass
class Row:
    test: str
    params: str
    rules: dict[str, str] = field(default_factory=dict)  # kernel -> deciding rule
    groups: dict[str, str] = field(default_factory=dict)
    cells: dict[str, str] = field(default_factory=dict)  # kernel -> verdict

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


def build(document: dict[str, object]) -> tuple[list[dict[str, object]], list[Row]]:
    kernels: list[dict[str, object]] = document["kernels"]  # type: ignore[assignment]
    rows: dict[tuple[str, str], Row] = {}
    for case in document["cases"]:  # type: ignore[union-attr]
        key = (case["test"], case["params_id"])
        row = rows.setdefault(key, Row(test=case["test"], params=case["params_id"]))
        row.rules[case["kernel"]] = case["rule"] or "-"
        row.groups[case["kernel"]] = case["group"]
        row.cells[case["kernel"]] = case["verdict"]
    ordered = sorted(rows.values(), key=lambda r: (r.group, r.rule, r.test, r.params))
    return kernels, ordered


def totals(document: dict[str, object]) -> Counter[str]:
    return Counter(case["verdict"] for case in document["cases"])  # type: ignore[union-attr, index]


def header(document: dict[str, object]) -> str:
    run: dict[str, object] = document["run"]  # type: ignore[assignment]
    count = totals(document)
    summary = ", ".join(f"{count[v]} {v}" for v in VERDICTS)
    return (
        f"MADV_COLLAPSE conformance: spec {run['spec']}, rule book {run['rule_book']}, run {run['run_id']}, "
        f"{len(document['cases'])} cases on {len(document['kernels'])} kernels: {summary}"  # type: ignore[arg-type]
    )


def failures(document: dict[str, object]) -> list[dict[str, object]]:
    return [c for c in document["cases"] if c["verdict"] in ("FAIL", "ERROR")]  # type: ignore[union-attr, index]


def render_text(document: dict[str, object]) -> str:
    """Rows grouped by rule under the rule's statement; kernel columns numbered, named in a legend."""
    kernels, rows = build(document)
    names = [str(k["name"]) for k in kernels]
    short = {str(k["name"]): f"[{i}]" for i, k in enumerate(kernels, 1)}
    statements: dict[str, str] = document["run"].get("rules", {})  # type: ignore[union-attr]
    label_width = max([len(r.label(short)) for r in rows] + [20]) + 2
    lines = [header(document), ""]
    for index, kernel in enumerate(kernels, 1):
        extra = ", ".join(f"{key} {kernel[key]}" for key in ("accel", "boot_s") if kernel.get(key) is not None)
        lines.append(f"  [{index}] {kernel['label']}: {kernel['version']} ({kernel['release']}, build {kernel['build_id']}) {extra}")
    lines += ["", " " * (4 + label_width) + " ".join(f"{short[n]:>5}" for n in names)]
    group = rule = None
    for row in rows:
        if row.group != group:
            group, rule = row.group, None
            lines.append(group)
        if row.rule != rule:
            rule = row.rule
            lines.append(f"  {rule}: {statements.get(rule, '')}".rstrip())
        cells = " ".join(f"{row.cells.get(n, NOT_RUN):>5}" for n in names)
        lines.append(f"    {row.label(short):<{label_width}}{cells}")
    lines.append("")
    lines.append(f"Cells: PASS, FAIL, SKIP, ERROR; {NOT_RUN} = not planned on that kernel; (RULE@[n]) = decided by RULE there.")
    bad = failures(document)
    if bad:
        lines.append("")
        lines.append("Failures and errors:")
        for case in bad:
            where = f"{short.get(str(case['kernel']), case['kernel'])} {case['test']}[{case['case_id']}]"
            lines.append(f"  {case['verdict']} {where}: {case['message']}")
    return "\n".join(lines) + "\n"


def render_markdown(document: dict[str, object]) -> str:
    kernels, rows = build(document)
    short = {str(k["name"]): str(k["label"]) for k in kernels}
    names = [str(k["name"]) for k in kernels]
    out = [f"# {header(document)}", ""]
    out.append("| group | rule | case | " + " | ".join(f"{short[n]} {k['version']}" for n, k in zip(names, kernels, strict=False)) + " |")
    out.append("|---|---|---|" + "---|" * len(names))
    for row in rows:
        cells = " | ".join(_md_cell(row.cells.get(n, NOT_RUN)) for n in names)
        out.append(f"| {row.group} | {row.rule} | `{row.test}[{row.label(short)}]` | {cells} |")
    bad = failures(document)
    if bad:
        out += ["", "## Failures and errors", ""]
        for case in bad:
            message = str(case["message"]).splitlines()[0] if case["message"] else ""
            where = f"{short.get(str(case['kernel']), case['kernel'])} `{case['test']}[{case['case_id']}]`"
            out.append(f"- **{case['verdict']}** {where} {case['rule']}: {message}")
    return "\n".join(out) + "\n"


def _md_cell(verdict: str) -> str:
    return f"**{verdict}**" if verdict in ("FAIL", "ERROR") else verdict
