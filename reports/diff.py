"""Compare verdicts: a baseline run against a new one (the patch-series flow), or the kernels of one
run in their order (which kernel last passed a case and which first failed it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reports.matrix import specs_of

BAD = ("FAIL", "ERROR")
CaseKey = tuple[str, str, str, int]  # spec, test, parameters, repeat


@dataclass
class PairDiff:
    base: dict[str, object]  # kernel descriptions
    new: dict[str, object]
    regressions: list[tuple[CaseKey, str, str]] = field(default_factory=list)  # key, base verdict, new verdict
    fixes: list[tuple[CaseKey, str, str]] = field(default_factory=list)
    changed: list[tuple[CaseKey, str, str]] = field(default_factory=list)  # any other change of verdict
    added: list[CaseKey] = field(default_factory=list)
    removed: list[CaseKey] = field(default_factory=list)


def _verdicts(document: dict[str, object], kernel: str) -> dict[CaseKey, tuple[str, dict[str, object]]]:
    primary = specs_of(document)[0]
    return {
        (str(c.get("spec") or primary), str(c["test"]), str(c["params_id"]), int(c.get("repeat", 1))): (str(c["verdict"]), c)  # type: ignore[call-overload]
        for c in document["cases"]  # type: ignore[union-attr]
        if c["kernel"] == kernel
    }


def pair_kernels(base: dict[str, object], new: dict[str, object]) -> list[tuple[dict[str, object], dict[str, object]]]:
    """One kernel on each side: those two. Otherwise kernels with the same label, then by position."""
    left: list[dict[str, object]] = base["kernels"]  # type: ignore[assignment]
    right: list[dict[str, object]] = new["kernels"]  # type: ignore[assignment]
    if len(left) == 1 and len(right) == 1:
        return [(left[0], right[0])]
    by_label = {str(k["label"]): k for k in right}
    if all(str(k["label"]) in by_label for k in left):
        return [(k, by_label[str(k["label"])]) for k in left]
    return list(zip(left, right, strict=False))


def diff(base: dict[str, object], new: dict[str, object]) -> list[PairDiff]:
    result = []
    for old_kernel, new_kernel in pair_kernels(base, new):
        before = _verdicts(base, str(old_kernel["name"]))
        after = _verdicts(new, str(new_kernel["name"]))
        pair = PairDiff(old_kernel, new_kernel)
        for key in sorted(before.keys() | after.keys()):
            if key not in after:
                pair.removed.append(key)
            elif key not in before:
                pair.added.append(key)
            else:
                was, now = before[key][0], after[key][0]
                if was == now:
                    continue
                if was == "PASS" and now in BAD:
                    pair.regressions.append((key, was, now))
                elif was in BAD and now == "PASS":
                    pair.fixes.append((key, was, now))
                else:
                    pair.changed.append((key, was, now))
        result.append(pair)
    return result


def case_name(key: CaseKey) -> str:
    spec, test, params, repeat = key
    return f"{test}[{params}]" + (f" rep{repeat}" if repeat > 1 else "") + (f" ({spec})" if spec != "upstream" else "")


def render_diff(pairs: list[PairDiff], new: dict[str, object]) -> str:
    lines = []
    cases = {(str(c.get("spec") or "upstream"), str(c["test"]), str(c["params_id"]), int(c.get("repeat", 1))): c for c in new["cases"]}  # type: ignore[union-attr, call-overload]
    for pair in pairs:
        lines.append(
            f"{pair.base['label']} {pair.base['release']} (build {pair.base['build_id']}) -> "
            f"{pair.new['label']} {pair.new['release']} (build {pair.new['build_id']}): "
            f"{len(pair.regressions)} regressions, {len(pair.fixes)} fixes, {len(pair.changed)} other changes, "
            f"{len(pair.added)} new, {len(pair.removed)} removed"
        )
        for title, items in (("regression", pair.regressions), ("fix", pair.fixes), ("changed", pair.changed)):
            for key, was, now in items:
                message = str(cases.get(key, {}).get("message") or "").splitlines()
                lines.append(f"  {title}: {case_name(key)} {was} -> {now}" + (f": {message[0]}" if message and now in BAD else ""))
        lines += [f"  new: {case_name(k)}" for k in pair.added] + [f"  removed: {case_name(k)}" for k in pair.removed]
    return "\n".join(lines) + "\n"


def across(document: dict[str, object]) -> list[tuple[CaseKey, str | None, str | None, list[str]]]:
    """For each case whose verdict changes along the run's kernel order: (case, last kernel where it
    passed before the first failure, first kernel where it failed, verdicts in order)."""
    kernels = [str(k["name"]) for k in document["kernels"]]  # type: ignore[union-attr]
    labels = {str(k["name"]): f"{k['label']} {k['version']}" for k in document["kernels"]}  # type: ignore[union-attr]
    per_kernel = {k: _verdicts(document, k) for k in kernels}
    keys = sorted({key for verdicts in per_kernel.values() for key in verdicts})
    changes = []
    for key in keys:
        seq = [per_kernel[k].get(key, ("·", {}))[0] for k in kernels]
        ran = [v for v in seq if v not in ("SKIP", "·")]
        if len(set(ran)) <= 1:
            continue
        first_bad = next((i for i, v in enumerate(seq) if v in BAD), None)
        last_pass = None
        if first_bad is not None:
            last_pass = next((i for i in range(first_bad - 1, -1, -1) if seq[i] == "PASS"), None)
        changes.append(
            (
                key,
                labels[kernels[last_pass]] if last_pass is not None else None,
                labels[kernels[first_bad]] if first_bad is not None else None,
                seq,
            )
        )
    return changes


def render_across(document: dict[str, object]) -> str:
    lines = ["Kernels in order: " + ", ".join(f"{k['label']} {k['version']}" for k in document["kernels"])]  # type: ignore[union-attr]
    for key, last_pass, first_bad, seq in across(document):
        where = f"last passed on {last_pass}, first failed on {first_bad}" if first_bad else "no failure"
        lines.append(f"  {case_name(key)}: {' '.join(seq)}; {where}")
    return "\n".join(lines) + "\n"
