"""One self-contained HTML page, no network: the summary and the overview (one row per rule, one
column per kernel, coloured by class) open it, the failing cases follow expanded, and the full
per-case table comes last, with filters and click-to-detail."""

from __future__ import annotations

import html
import json

from reports.matrix import LEGEND, OVERVIEW_LEGEND, build, failure_line, kernel_line, short_names
from reports.record import WORDS, CaseRecord, Results
from reports.summary import NOT_RUN_WORD, failures, incomplete_lines, overview, retried, retried_line, summary_line

CONSOLE_CHARS = 4000  # of a case's console excerpt kept in the page


def _detail(case: CaseRecord) -> dict[str, object]:
    return {
        "case": f"{case.test}[{case.case_id}]",
        "spec": case.spec,
        "rule": case.rule,
        "verdict": str(case.verdict),
        "class": str(case.case_class),
        "parameters": case.params,
        "expected": case.expected,
        "observed": case.observed,
        "duration_s": case.duration_s,
        "message": case.message,
        "kmsg": case.kmsg,
        "console": (case.console or "")[-CONSOLE_CHARS:] or None,
    }


def page_data(results: Results) -> dict[str, object]:
    short = short_names(results)
    shown = results.display_names
    statements = results.statements
    not_run = results.completeness.not_run
    return {
        "title": summary_line(results),
        "tool": results.tool,
        "incomplete": incomplete_lines(results),
        "kernels": [
            {"name": k["name"], "label": f"[{i}] {shown[str(k['name'])]} {k['version']}", "line": kernel_line(i, k)}
            for i, k in enumerate(results.kernels, 1)
        ],
        "overview": [
            {
                "spec": row.spec,
                "rule": row.rule,
                "statement": row.statement,
                "cells": {k: {"word": c.word, "text": c.text(reasons=True)} for k, c in row.cells.items()},
            }
            for row in overview(results)
        ],
        "failures": [{"word": WORDS[c.case_class], "line": failure_line(c, short)} for c in failures(results)],
        "retried": [retried_line(c, short) for c in retried(results)],
        "rows": [
            {
                "spec": row.spec,
                "group": row.group,
                "rule": row.rule,
                "statement": statements.get(row.rule, ""),
                "label": f"{row.test}[{row.label(short)}]",
                "cells": {
                    **{str(k["name"]): {"verdict": NOT_RUN_WORD} for k in results.kernels if (row.key, str(k["name"])) in not_run},
                    **{kernel: {"verdict": WORDS[cls], "detail": _detail(row.records[kernel][-1])} for kernel, cls in row.cells.items()},
                },
            }
            for row in build(results)
        ],
    }


def render_html(results: Results) -> str:
    data = json.dumps(page_data(results), sort_keys=True).replace("</", "<\\/")
    return (
        PAGE.replace("@TITLE@", html.escape(summary_line(results)))
        .replace("@OVERVIEW_LEGEND@", html.escape(OVERVIEW_LEGEND))
        .replace("@LEGEND@", html.escape(LEGEND))
        .replace("@DATA@", data)
    )


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
td.DOC { background: #fff59d; } td.SPEC { background: #b3e5fc; } td.MISS { background: #fff; color: #b71c1c; border: 2px dashed #b71c1c; }
#incomplete { color: #b71c1c; }
#overview td.cell { font-weight: 400; white-space: nowrap; max-width: 11em; overflow: hidden; text-overflow: ellipsis; }
#overview td.statement { color: #555; font-size: 12px; }
#failures li { font-family: monospace; }
tr.rule td { background: #f5f5f5; font-style: italic; }
#filters select { margin-right: 1em; }
#detail { position: fixed; right: 0; top: 0; width: 40%; height: 100%; overflow: auto; background: #fafafa;
  border-left: 2px solid #1565c0; padding: 1em; display: none; }
#detail pre { white-space: pre-wrap; word-break: break-all; }
</style></head>
<body>
<h1>@TITLE@</h1>
<div id="kernels"></div>
<p id="tool"></p>
<div id="incomplete"></div>
<h2>Overview</h2>
<table id="overview"><thead></thead><tbody></tbody></table>
<p>@OVERVIEW_LEGEND@ Click a rule to see its cases below.</p>
<h2>Failing cases</h2>
<ul id="failures"></ul>
<h2>Cases whose call needed more than one attempt</h2>
<ul id="retried"></ul>
<h2>Every case</h2>
<p id="filters">
group <select id="f-group"><option value="">all</option></select>
rule <select id="f-rule"><option value="">all</option></select>
verdict <select id="f-verdict"><option value="">all</option><option>PASS</option><option>FAIL</option>
<option>ERROR</option><option>FLAKY</option><option>DOC</option><option>SPEC</option><option>SKIP</option><option>MISS</option></select>
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
$("tool").textContent = "Reported by " + data.tool + ".";
if (data.incomplete.length) { $("incomplete").appendChild(el("h2", {}, data.incomplete[0]));
  const list = el("ul"); for (const line of data.incomplete.slice(1)) list.appendChild(el("li", {}, line.replace(/^- /, "")));
  $("incomplete").appendChild(list); }
for (const g of [...new Set(data.rows.map((r) => r.group))].sort()) $("f-group").appendChild(el("option", {}, g));
for (const r of [...new Set(data.rows.map((r) => r.rule))].sort()) $("f-rule").appendChild(el("option", {}, r));
const ohead = el("tr"); ohead.appendChild(el("th", {}, "rule"));
for (const k of data.kernels) ohead.appendChild(el("th", {}, k.label));
ohead.appendChild(el("th", {}, "statement")); $("overview").tHead.replaceChildren(ohead);
for (const row of data.overview) {
  const tr = el("tr", {"data-rule": row.rule});
  const name = el("td", {class: "label"}, row.spec === data.overview[0].spec ? row.rule : `${row.rule} (${row.spec})`);
  name.style.cursor = "pointer";
  name.addEventListener("click", () => { $("f-rule").value = row.rule; render(); $("matrix").scrollIntoView(); });
  tr.appendChild(name);
  for (const k of data.kernels) { const c = row.cells[k.name];
    tr.appendChild(el("td", {class: "cell " + (c ? c.word : "none"), title: c ? c.text : ""}, c ? c.text : "·")); }
  tr.appendChild(el("td", {class: "statement"}, row.statement));
  $("overview").tBodies[0].appendChild(tr);
}
if (!data.failures.length) $("failures").appendChild(el("li", {}, "none"));
for (const f of data.failures) $("failures").appendChild(el("li", {class: f.word}, f.line));
if (!data.retried.length) $("retried").appendChild(el("li", {}, "none"));
for (const line of data.retried) $("retried").appendChild(el("li", {}, line));
function render() {
  const group = $("f-group").value, verdict = $("f-verdict").value, kernel = $("f-kernel").value, rule = $("f-rule").value;
  const kernels = data.kernels.filter((k) => !kernel || k.name === kernel);
  const head = el("tr"); head.appendChild(el("th", {}, "case"));
  for (const k of kernels) head.appendChild(el("th", {}, k.label));
  $("matrix").tHead.replaceChildren(head);
  const body = $("matrix").tBodies[0]; body.replaceChildren();
  let shown = 0, lastRule = null;
  for (const row of data.rows) {
    if (group && row.group !== group) continue;
    if (rule && row.rule !== rule) continue;
    if (verdict && !kernels.some((k) => row.cells[k.name] && row.cells[k.name].verdict === verdict)) continue;
    const ruleKey = row.spec + "/" + row.rule;
    if (ruleKey !== lastRule) { lastRule = ruleKey;
      const tr = el("tr", {class: "rule"}); tr.appendChild(el("td", {colspan: kernels.length + 1},
        `${row.spec} · ${row.group} · ${row.rule}: ${row.statement}`)); body.appendChild(tr); }
    const tr = el("tr", {"data-rule": row.rule}); tr.appendChild(el("td", {class: "label"}, row.label));
    for (const k of kernels) {
      const cell = row.cells[k.name];
      const td = el("td", {class: "cell " + (cell ? cell.verdict : "none"), "data-kernel": k.name}, cell ? cell.verdict : "·");
      if (cell && cell.detail) td.addEventListener("click", () => show(td, cell.detail));
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
for (const id of ["f-group", "f-rule", "f-verdict", "f-kernel"]) $(id).addEventListener("change", render);
render();
</script>
</body></html>
"""
