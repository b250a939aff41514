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
    verdicts: dict[str, list[str]] = field(default_factory=dict)  # kernel -> verdict of each repeat

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


def build(document: dict[str, object]) -> tuple[list[dict[str, object]], list[Row]]:
    kernels: list[dict[str, object]] = document["kernels"]  # type: ignore[assignment]
    rows: dict[tuple[str, str], Row] = {}
    for case in document["cases"]:  # type: ignore[union-attr]
        key = (case["test"], case["params_id"])
        row = rows.setdefault(key, Row(test=case["test"], params=case["params_id"]))
        row.rules[case["kernel"]] = case["rule"] or "-"
        row.groups[case["kernel"]] = case["group"]
        row.verdicts.setdefault(case["kernel"], []).append(case["verdict"])
    ordered = sorted(rows.values(), key=lambda r: (r.group, r.rule, r.test, r.params))
    return kernels, ordered


def combine(verdicts: list[str]) -> str:
    """One cell from its repeats: their common verdict, or FLAKY when they disagree."""
    return verdicts[0] if len(set(verdicts)) == 1 else "FLAKY"


def totals(document: dict[str, object]) -> Counter[str]:
    """Verdicts per cell (case x kernel), repeats combined."""
    _, rows = build(document)
    return Counter(verdict for row in rows for verdict in row.cells.values())


def header(document: dict[str, object]) -> str:
    run: dict[str, object] = document["run"]  # type: ignore[assignment]
    count = totals(document)
    summary = ", ".join(f"{count[v]} {v}" for v in VERDICTS if v != "FLAKY" or count[v])
    repeats = f" x{run['repeat']} repeats" if int(run.get("repeat", 1)) > 1 else ""  # type: ignore[call-overload]
    return (
        f"MADV_COLLAPSE conformance: spec {run['spec']}, rule book {run['rule_book']}, run {run['run_id']}, "
        f"{sum(count.values())} cases{repeats} on {len(document['kernels'])} kernels: {summary}"  # type: ignore[arg-type]
    )


def failures(document: dict[str, object]) -> list[dict[str, object]]:
    """FAIL and ERROR records, and one entry per FLAKY cell listing its repeats."""
    _, rows = build(document)
    flaky = {(row.test, row.params, k) for row in rows for k, v in row.cells.items() if v == "FLAKY"}
    listed = [c for c in document["cases"] if c["verdict"] in ("FAIL", "ERROR")]  # type: ignore[union-attr, index]
    for row in rows:
        for kernel, verdicts in row.verdicts.items():
            if (row.test, row.params, kernel) in flaky:
                case_id = next(
                    str(c["case_id"])
                    for c in document["cases"]
                    if c["kernel"] == kernel and c["params_id"] == row.params  # type: ignore[union-attr, index]
                )
                message = f"repeats disagree: {', '.join(verdicts)}"
                listed.append(
                    {"verdict": "FLAKY", "kernel": kernel, "test": row.test, "case_id": case_id, "rule": row.rule, "message": message}
                )
    return listed


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
    lines.append(f"Cells: PASS, FAIL, SKIP, ERROR, FLAKY (repeats disagree); {NOT_RUN} = not planned; (RULE@[n]) = decided by RULE there.")
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
    return f"**{verdict}**" if verdict in ("FAIL", "ERROR", "FLAKY") else verdict
