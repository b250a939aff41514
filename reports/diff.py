"""Compare stored classes: a baseline run against a new one (the patch-series flow), or the kernels
of one run in their order (which kernel last passed a case and which first failed it).

Kernels are paired by label wherever a label is on both sides (one kernel on each side: those
two); the rest are listed as unpaired, never compared with a stranger."""

from __future__ import annotations

from dataclasses import dataclass, field

from reports.exits import Exit, judged_exit
from reports.record import CaseClass, CaseRecord, Results
from reports.summary import STATUS_WORDS

CaseKey = tuple[str, str, str, int]  # spec, test, parameters, repeat
Change = tuple[CaseKey, CaseClass, CaseClass]  # key, base class, new class


def case_key(case: CaseRecord) -> CaseKey:
    """A case across runs: spec, test, parameters and repeat (kernels are paired apart)."""
    return (case.spec, case.test, case.params_id, case.repeat)


@dataclass
class PairDiff:
    base: dict[str, object]  # kernel descriptions
    new: dict[str, object]
    # Now a regression, before judged and not one; after a base ERROR nothing is known of the
    # base, so that change is listed under changed, never blamed on what the new run added.
    regressions: list[Change] = field(default_factory=list)
    fixes: list[Change] = field(default_factory=list)  # a regression before, a pass now
    errors: list[Change] = field(default_factory=list)  # now an infrastructure error: nothing known
    changed: list[Change] = field(default_factory=list)  # any other change of class
    added: list[CaseKey] = field(default_factory=list)
    removed: list[CaseKey] = field(default_factory=list)


@dataclass
class Diff:
    pairs: list[PairDiff]
    unpaired_base: list[dict[str, object]]
    unpaired_new: list[dict[str, object]]
    rule_books: tuple[str, str]

    @property
    def exit_status(self) -> Exit:
        return judged_exit(any(p.regressions for p in self.pairs), any(p.errors for p in self.pairs))


def _classes(results: Results, kernel: str) -> dict[CaseKey, CaseRecord]:
    return {case_key(c): c for c in results.cases if c.kernel == kernel}


def pair_kernels(
    base: Results, new: Results
) -> tuple[list[tuple[dict[str, object], dict[str, object]]], list[dict[str, object]], list[dict[str, object]]]:
    """(pairs, unpaired base kernels, unpaired new kernels)."""
    left, right = base.kernels, new.kernels
    if len(left) == 1 and len(right) == 1:
        return [(left[0], right[0])], [], []
    by_label = {str(k["label"]): k for k in right}
    pairs = [(k, by_label[str(k["label"])]) for k in left if str(k["label"]) in by_label]
    paired = {id(k) for pair in pairs for k in pair}
    return pairs, [k for k in left if id(k) not in paired], [k for k in right if id(k) not in paired]


def diff(base: Results, new: Results) -> Diff:
    pairs, lone_base, lone_new = pair_kernels(base, new)
    result = Diff([], lone_base, lone_new, (base.rule_book, new.rule_book))
    for old_kernel, new_kernel in pairs:
        before = _classes(base, str(old_kernel["name"]))
        after = _classes(new, str(new_kernel["name"]))
        pair = PairDiff(old_kernel, new_kernel)
        for key in sorted(before.keys() | after.keys()):
            if key not in after:
                pair.removed.append(key)
            elif key not in before:
                pair.added.append(key)
            else:
                was, now = before[key].case_class, after[key].case_class
                if was == now:
                    continue
                change = (key, was, now)
                if now is CaseClass.REGRESSION and was is not CaseClass.INFRASTRUCTURE:
                    pair.regressions.append(change)
                elif was is CaseClass.REGRESSION and now is CaseClass.PASS:
                    pair.fixes.append(change)
                elif now is CaseClass.INFRASTRUCTURE:
                    pair.errors.append(change)
                else:
                    pair.changed.append(change)
        result.pairs.append(pair)
    return result


def case_name(key: CaseKey, primary: str = "upstream") -> str:
    spec, test, params, repeat = key
    return f"{test}[{params}]" + (f" rep{repeat}" if repeat > 1 else "") + (f" ({spec})" if spec != primary else "")


def _kernel(kernel: dict[str, object]) -> str:
    return f"{kernel['label']} {kernel['release']} (build {kernel['build_id']})"


def render_diff(result: Diff, new: Results) -> str:
    regressions = sum(len(p.regressions) for p in result.pairs)
    errors = sum(len(p.errors) for p in result.pairs)
    status = STATUS_WORDS[result.exit_status]
    lines = [
        f"MADV_COLLAPSE conformance diff {status}: {regressions} regressions, {errors} new infrastructure errors, "
        f"{sum(len(p.fixes) for p in result.pairs)} fixes over {len(result.pairs)} kernel pairs"
    ]
    if result.rule_books[0] != result.rule_books[1]:
        lines.append(
            f"warning: the runs used different rule books (base {result.rule_books[0]}, new {result.rule_books[1]}): "
            "a change may come from the rules, not the kernel"
        )
    records = {(case_key(c), c.kernel): c for c in new.cases}
    for pair in result.pairs:
        lines.append(
            f"{_kernel(pair.base)} -> {_kernel(pair.new)}: {len(pair.regressions)} regressions, {len(pair.fixes)} fixes, "
            f"{len(pair.errors)} errors, {len(pair.changed)} other changes, {len(pair.added)} new, {len(pair.removed)} removed"
        )
        for title, items in (("regression", pair.regressions), ("error", pair.errors), ("fix", pair.fixes), ("changed", pair.changed)):
            for key, was, now in items:
                record = records.get((key, str(pair.new["name"])))
                message = (record.message or "").strip().splitlines() if record and now.is_failure else []
                lines.append(f"  {title}: {case_name(key, new.primary)} {was} -> {now}" + (f": {message[0]}" if message else ""))
        lines += [f"  new: {case_name(k, new.primary)}" for k in pair.added] + [
            f"  removed: {case_name(k, new.primary)}" for k in pair.removed
        ]
    lines += [f"unpaired (only in base): {_kernel(k)}" for k in result.unpaired_base]
    lines += [f"unpaired (only in new): {_kernel(k)}" for k in result.unpaired_new]
    return "\n".join(lines) + "\n"


@dataclass
class Transition:
    key: CaseKey
    classes: list[str]  # per kernel in order; '·' where not planned
    last_pass: str | None  # kernel label and version
    first_failure: str | None


def across(results: Results) -> list[Transition]:
    """For each case whose class changes along the run's kernel order: where it last passed before
    its first regression, and where that first regression is."""
    kernels = [str(k["name"]) for k in results.kernels]
    labels = {str(k["name"]): f"{k['label']} {k['version']}" for k in results.kernels}
    per_kernel = {k: _classes(results, k) for k in kernels}
    keys = sorted({key for classes in per_kernel.values() for key in classes})
    changes = []
    for key in keys:
        seq = [per_kernel[k][key].case_class if key in per_kernel[k] else None for k in kernels]
        judged = {c for c in seq if c not in (None, CaseClass.SKIP)}
        if len(judged) <= 1:
            continue
        first_bad = next((i for i, c in enumerate(seq) if c is CaseClass.REGRESSION), None)
        last_pass = None
        if first_bad is not None:
            last_pass = next((i for i in range(first_bad - 1, -1, -1) if seq[i] is CaseClass.PASS), None)
        changes.append(
            Transition(
                key,
                [str(c) if c else "·" for c in seq],
                labels[kernels[last_pass]] if last_pass is not None else None,
                labels[kernels[first_bad]] if first_bad is not None else None,
            )
        )
    return changes


def render_across(results: Results) -> str:
    lines = ["Kernels in order: " + ", ".join(f"{k['label']} {k['version']}" for k in results.kernels)]
    for change in across(results):
        if change.first_failure and change.last_pass:
            where = f"last passed on {change.last_pass}, first failed on {change.first_failure}"
        elif change.first_failure:
            where = f"first failed on {change.first_failure}, no earlier kernel passed"
        else:
            where = "no regression"
        lines.append(f"  {case_name(change.key, results.primary)}: {' '.join(change.classes)}; {where}")
    return "\n".join(lines) + "\n"
