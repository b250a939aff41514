"""What a series run leaves for a reviewer: the reply for the list (plain text, at most 72 columns),
the usual reports for the base/series pair, and a KCIDB document whose checkouts name the base
commit and the patchset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reports import render_run
from reports.diff import CaseKey, case_name

# The linux-mm email's wrapping (72 columns), so both mails read alike.
from reports.email import wrap
from reports.jsonvalues import mapping
from reports.merge import merge
from reports.record import Results, ResultsDocument, load
from reports.results import fold_log
from suites import rulebook
from workflows.patchset import Patch, Series
from workflows.series_verdict import Blame, Verdict

LABELS = ("base", "series")  # the pair's kernel columns (both trees report the same release)


@dataclass(frozen=True)
class Context:
    """What the reply states besides the verdict."""

    series: Series
    base: str  # the base commit
    base_subject: str
    kernels: tuple[dict[str, object], dict[str, object]]  # base and series kernel descriptions
    specs: list[str]
    command: list[str]  # the command that reproduces the run, in shell words


def render_reply(ctx: Context, verdict: Verdict, blame: dict[CaseKey, Blame]) -> str:
    series = ctx.series
    # A long subject is folded (RFC 5322: continuation lines start with a space).
    lines = wrap(f"Subject: Re: {series.reply_subject.removeprefix('Re: ')}", "", " ")
    if series.reply_to:
        lines += [f"In-Reply-To: <{series.reply_to}>", f"References: <{series.reply_to}>"]
    count = len(verdict.regressions)
    found = f"{count} regression{'s' if count != 1 else ''}" if count else "no regression"
    counts = f"{found}, {len(verdict.fixes)} fixes, {len(verdict.changes)} other changes"
    unjudged = f", {len(verdict.unjudged)} cases not judged" if verdict.unjudged else ""
    lines += ["", *wrap(f"MADV_COLLAPSE conformance of this series (collapse-conformance): {counts}{unjudged}.")]
    lines += ["", *wrap(f'Base:    {ctx.base[:12]} ("{ctx.base_subject}")', "", " " * 9), "Series:"]
    for patch in series.patches:
        lines += wrap(patch.subject, "  ", "    ")
    lines.append("Kernels:")
    for label, kernel in zip(LABELS, ctx.kernels, strict=True):
        lines += wrap(f"{label}: {kernel.get('release')} (build {kernel.get('build_id')}, {kernel.get('accel')})", "  ", "    ")
    lines += wrap(f"Specs:   {', '.join(ctx.specs)}", "", " " * 9)
    book = rulebook.load()
    rules = {r.id: r for r in book.rules}
    if verdict.regressions:
        lines += ["", f"Regressions (rule book {book.version}):"]
    for key, was, now in verdict.regressions:
        record = verdict.records[key]
        rule = rules.get(str(record.rule))
        lines += wrap(f"- {case_name(key)}: {was} -> {now}", "", "    ")
        lines += wrap(f"rule {record.rule}: {rule.statement if rule else ''}", "    ", "      ")
        if rule:
            lines += wrap(f"source: {rule.source}", "    ", "      ")
        message = (record.message or "").strip().splitlines()
        # The judge's line: "RULE: expected ...; observed ..."
        for part in (message[0].split(": ", 1)[-1] if message else str(now)).split("; "):
            lines += wrap(part, "    ", "      ")
        lines += wrap(f"first bad patch: {_blamed(blame.get(key), series.patches)}", "    ", "      ")
    for title, items in (("Fixes", verdict.fixes), ("Other changes", verdict.changes)):
        if items:
            lines += ["", f"{title}:"]
            for key, was, now in items:
                lines += wrap(f"- {case_name(key)}: {was} -> {now}", "", "    ")
    if verdict.unjudged:
        lines += ["", *wrap(f"Not judged (harness errors on base or series): {', '.join(case_name(k) for k in verdict.unjudged)}")]
    # One word per line, so that a long path never breaks the command when it is pasted.
    lines += ["", "To reproduce:", *(f"  {word} \\" for word in ctx.command[:-1]), f"  {ctx.command[-1]}"]
    return "\n".join(lines) + "\n"


def _blamed(blame: Blame | None, patches: tuple[Patch, ...]) -> str:
    if blame is None:
        return "not bisected"
    if blame.exact:
        return patches[blame.bad - 1].name
    return f"one of patches {blame.good + 1}-{blame.bad} (one between could not be judged)"


def write_pair(out: Path, runs: tuple[Path, Path], base: str, patchset: str) -> Results:
    """OUT/results.json and every format for the base/series pair, the columns labelled base and
    series, each checkout naming the base commit and (the series) the patchset's hash."""
    staged = []
    for label, run, patches in zip(LABELS, runs, ("", patchset), strict=True):
        document = load(run).to_json()  # through the loader: an older run's kernels name their origin too
        target = out / ".pair" / label
        target.mkdir(parents=True, exist_ok=True)
        (target / "results.json").write_text(json.dumps(_relabel(document, label, base, patches)))
        staged.append(target)
    results = fold_log(out, merge(staged, out))
    render_run(out, results)
    return results


def _relabel(document: ResultsDocument, label: str, base: str, patchset: str) -> ResultsDocument:
    """The run's kernel renamed LABEL-<build id> (two distinct columns even when a series leaves the
    image as it was), its provenance the base commit plus the patchset, as KCIDB counts a checkout."""
    names: dict[str, str] = {}
    kernels = []
    for kernel in document["kernels"]:
        names[str(kernel["name"])] = f"{label}-{kernel['build_id']}"
        git = {**mapping(kernel.get("git")), "commit": base, "patchset_hash": patchset, "dirty": False}
        if patchset:
            git.pop("describe", None)  # it names the last patch's commit, not the base
        kernels.append({**kernel, "name": names[str(kernel["name"])], "label": label, "git": git})
    cases = []
    for case in document["cases"]:
        old = str(case["kernel"])
        new = names.get(old, old)
        info = next((k for k in kernels if k["name"] == new), case.get("kernel_info", {}))
        # Without xdist a node id does not name the kernel, and both trees have the same label:
        # merge() keys records by node id, so the new kernel name goes in.
        nodeid = str(case["nodeid"])
        nodeid = nodeid.replace(old, new) if old in nodeid else f"{nodeid}@{new}"
        cases.append({**case, "kernel": new, "kernel_info": info, "nodeid": nodeid})
    return {**document, "kernels": kernels, "cases": cases}
