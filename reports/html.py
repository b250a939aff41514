"""One self-contained HTML page: a colour-coded matrix with filters and click-to-detail, no network."""

from __future__ import annotations

import html
import json

from reports.matrix import LEGEND, build, header, kernel_line

CONSOLE_CHARS = 4000  # of a case's console excerpt kept in the page


def _detail(case: dict[str, object]) -> dict[str, object]:
    return {
        "case": f"{case['test']}[{case['case_id']}]",
        "spec": case.get("spec"),
        "rule": case.get("rule"),
        "verdict": case.get("verdict"),
        "parameters": case.get("params"),
        "expected": case.get("expected"),
        "observed": case.get("observed"),
        "duration_s": case.get("duration_s"),
        "message": case.get("message"),
        "kmsg": case.get("kmsg"),
        "console": str(case.get("console") or "")[-CONSOLE_CHARS:] or None,
    }


def page_data(document: dict[str, object]) -> dict[str, object]:
    kernels, rows = build(document)
    short = {str(k["name"]): f"[{i}]" for i, k in enumerate(kernels, 1)}
    statements: dict[str, str] = document["run"].get("rules", {})  # type: ignore[union-attr]
    return {
        "title": header(document),
        "kernels": [
            {"name": k["name"], "label": f"[{i}] {k['label']} {k['version']}", "line": kernel_line(i, k)} for i, k in enumerate(kernels, 1)
        ],
        "rows": [
            {
                "spec": row.spec,
                "group": row.group,
                "rule": row.rule,
                "statement": statements.get(row.rule, ""),
                "label": f"{row.test}[{row.label(short)}]",
                "cells": {kernel: {"verdict": verdict, "detail": _detail(row.cases[kernel])} for kernel, verdict in row.cells.items()},
            }
            for row in rows
        ],
    }


def render_html(document: dict[str, object]) -> str:
    data = json.dumps(page_data(document), sort_keys=True).replace("</", "<\\/")
    return PAGE.replace("@TITLE@", html.escape(header(document))).replace("@LEGEND@", html.escape(LEGEND)).replace("@DATA@", data)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>@TITLE@</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 15px; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th { background: #eee; position: sticky; top: 0; }
td.label { font-family: monospace; }
td.cell { text-align: center; cursor: pointer; font-weight: 600; min-width: 4em; }
td.PASS { background: #c8e6c9; } td.FAIL { background: #ef9a9a; } td.ERROR { background: #ffcc80; }
td.SKIP { background: #eeeeee; color: #777; } td.FLAKY { background: #ce93d8; } td.selected { outline: 3px solid #1565c0; }
tr.rule td { background: #f5f5f5; font-style: italic; }
#filters select { margin-right: 1em; }
#detail { position: fixed; right: 0; top: 0; width: 40%; height: 100%; overflow: auto; background: #fafafa;
  border-left: 2px solid #1565c0; padding: 1em; display: none; }
#detail pre { white-space: pre-wrap; word-break: break-all; }
</style></head>
<body>
<h1>@TITLE@</h1>
<div id="kernels"></div>
<p id="filters">
group <select id="f-group"><option value="">all</option></select>
verdict <select id="f-verdict"><option value="">all</option><option>PASS</option><option>FAIL</option>
<option>ERROR</option><option>SKIP</option><option>FLAKY</option></select>
kernel <select id="f-kernel"><option value="">all</option></select>
<span id="count"></span></p>
<table id="matrix"><thead></thead><tbody></tbody></table>
<p>@LEGEND@ Click a cell for the case's parameters, expectation, observation, duration and console.</p>
<div id="detail"><button id="close">close</button><h2 id="detail-title"></h2><pre id="detail-body"></pre></div>
<script id="data" type="application/json">@DATA@</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, text = "") => { const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); e.textContent = text; return e; };
for (const k of data.kernels) {
  $("kernels").appendChild(el("div", {}, k.line));
  $("f-kernel").appendChild(el("option", {value: k.name}, k.label));
}
for (const g of [...new Set(data.rows.map((r) => r.group))].sort()) $("f-group").appendChild(el("option", {}, g));
function render() {
  const group = $("f-group").value, verdict = $("f-verdict").value, kernel = $("f-kernel").value;
  const kernels = data.kernels.filter((k) => !kernel || k.name === kernel);
  const head = el("tr"); head.appendChild(el("th", {}, "case"));
  for (const k of kernels) head.appendChild(el("th", {}, k.label));
  $("matrix").tHead.replaceChildren(head);
  const body = $("matrix").tBodies[0]; body.replaceChildren();
  let shown = 0, lastRule = null;
  for (const row of data.rows) {
    if (group && row.group !== group) continue;
    if (verdict && !kernels.some((k) => row.cells[k.name] && row.cells[k.name].verdict === verdict)) continue;
    const ruleKey = row.spec + "/" + row.rule;
    if (ruleKey !== lastRule) { lastRule = ruleKey;
      const tr = el("tr", {class: "rule"}); tr.appendChild(el("td", {colspan: kernels.length + 1},
        `${row.spec} · ${row.group} · ${row.rule}: ${row.statement}`)); body.appendChild(tr); }
    const tr = el("tr", {"data-rule": row.rule}); tr.appendChild(el("td", {class: "label"}, row.label));
    for (const k of kernels) {
      const cell = row.cells[k.name];
      const td = el("td", {class: "cell " + (cell ? cell.verdict : "none"), "data-kernel": k.name}, cell ? cell.verdict : "·");
      if (cell) td.addEventListener("click", () => show(td, cell.detail));
      tr.appendChild(td);
    }
    body.appendChild(tr); shown++;
  }
  $("count").textContent = `${shown} of ${data.rows.length} rows`;
}
function show(td, detail) {
  document.querySelectorAll("td.selected").forEach((e) => e.classList.remove("selected"));
  td.classList.add("selected");
  $("detail-title").textContent = detail.case;
  $("detail-body").textContent = JSON.stringify(detail, null, 2);
  $("detail").style.display = "block";
}
$("close").addEventListener("click", () => { $("detail").style.display = "none"; });
for (const id of ["f-group", "f-verdict", "f-kernel"]) $(id).addEventListener("change", render);
render();
</script>
</body></html>
"""
