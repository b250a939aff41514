"""Compare stored classes: a baseline run against a new one (the patch-series flow), or the kernels
of one run in their order (which kernel last passed a case and which first failed it).

Kernels are paired by label wherever a label is on both sides once (a label on several kernels of
a side pairs by the full name, label plus build id); one kernel on each side, labels apart, pairs
when both are of one version. Kernels of different versions pair only with pair_any (--pair-any),
and the diff's header says so. The rest are listed as unpaired, never compared with a stranger; a
diff with no pair compares nothing, and says so (Exit.NOTHING_COMPARED), never CLEAN."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from reports.exits import Exit, judged_exit
from reports.record import CaseClass, CaseRecord, Results, presence_of
from reports.summary import status_word

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
    # The rule book's changes one kernel has and the other lacks (key, new has it, its evidence),
    # and the cases another rule decides because of them: a kernel that gained a backport is
    # expected to behave otherwise, which is no regression.
    kernel_changes: list[tuple[str, bool, str]] = field(default_factory=list)
    rule_changes: list[tuple[CaseKey, str, str]] = field(default_factory=list)  # case, base rule, new rule
    shared: int = 0  # cases on both sides: what was compared


@dataclass
class Diff:
    pairs: list[PairDiff]
    unpaired_base: list[dict[str, object]]
    unpaired_new: list[dict[str, object]]
    rule_books: tuple[str, str]
    notes: list[str] = field(default_factory=list)  # how kernels of different labels or versions were paired
    incomplete: dict[str, list[str]] = field(default_factory=dict)  # side ('base', 'new') -> what it left undone

    @property
    def compared(self) -> bool:
        """A pair shared at least one case: kernels paired with nothing in common compare nothing."""
        return any(p.shared for p in self.pairs)

    @property
    def exit_status(self) -> Exit:
        if not self.compared:
            return Exit.NOTHING_COMPARED
        return judged_exit(any(p.regressions for p in self.pairs), any(p.errors for p in self.pairs), bool(self.incomplete))


def _classes(results: Results, kernel: str) -> dict[CaseKey, CaseRecord]:
    return {case_key(c): c for c in results.cases if c.kernel == kernel}


Pairs = list[tuple[dict[str, object], dict[str, object]]]


def _by_unique_label(kernels: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """label -> kernel, for the labels only one kernel of the side carries."""
    labels = [str(k["label"]) for k in kernels]
    return {str(k["label"]): k for k in kernels if labels.count(str(k["label"])) == 1}


def _describe_pair(old: dict[str, object], new: dict[str, object]) -> str:
    return f"{old['label']} {old['version']} with {new['label']} {new['version']}"


def _candidates(left: list[dict[str, object]], right: list[dict[str, object]]) -> Pairs:
    """Kernels meant to be one: a label one kernel carries on each side; for a label several kernels
    of a side carry, the very build (its full name) on both; else, one kernel on each side."""
    mine, theirs = _by_unique_label(left), _by_unique_label(right)
    by_name = {str(k["name"]): k for k in right}
    pairs: Pairs = []
    for kernel in left:
        label, name = str(kernel["label"]), str(kernel["name"])
        if label in mine and label in theirs:
            pairs.append((kernel, theirs[label]))
        elif label not in mine and name in by_name:
            pairs.append((kernel, by_name[name]))
    if not pairs and len(left) == 1 and len(right) == 1:
        pairs = [(left[0], right[0])]
    return pairs


def pair_kernels(
    base: Results, new: Results, pair_any: bool = False
) -> tuple[Pairs, list[dict[str, object]], list[dict[str, object]], list[str]]:
    """(pairs, unpaired base kernels, unpaired new kernels, notes for the diff's header). Two kernels
    of different versions pair only with PAIR_ANY, which also pairs the kernels left over, in order."""
    pairs, notes = [], []
    for old, now in _candidates(base.kernels, new.kernels):
        if old["version"] == now["version"]:
            pairs.append((old, now))
            if old["label"] != now["label"]:
                notes.append(f"one kernel on each side: paired {_describe_pair(old, now)} (labels differ)")
        elif pair_any:
            pairs.append((old, now))
            notes.append(f"--pair-any: paired {_describe_pair(old, now)} (different versions)")
        else:
            both = f"{old['label']} {old['version']} and {now['label']} {now['version']}"
            notes.append(f"not paired: {both} are different versions; pass --pair-any to compare them")
    paired = {id(k) for pair in pairs for k in pair}
    lone_left = [k for k in base.kernels if id(k) not in paired]
    lone_right = [k for k in new.kernels if id(k) not in paired]
    if pair_any:
        extra = list(zip(lone_left, lone_right, strict=False))
        pairs += extra
        notes += [f"--pair-any: paired {_describe_pair(old, now)} (labels differ)" for old, now in extra]
        lone_left, lone_right = lone_left[len(extra) :], lone_right[len(extra) :]
    return pairs, lone_left, lone_right, notes


def diff(base: Results, new: Results, pair_any: bool = False) -> Diff:
    pairs, lone_base, lone_new, notes = pair_kernels(base, new, pair_any)
    incomplete = {side: run.completeness.gaps() for side, run in (("base", base), ("new", new)) if run.completeness.incomplete}
    result = Diff([], lone_base, lone_new, (base.rule_book, new.rule_book), notes, incomplete)
    for old_kernel, new_kernel in pairs:
        before = _classes(base, str(old_kernel["name"]))
        after = _classes(new, str(new_kernel["name"]))
        pair = PairDiff(old_kernel, new_kernel, kernel_changes=changed_presence(old_kernel, new_kernel))
        for key in sorted(before.keys() | after.keys()):
            if key not in after:
                pair.removed.append(key)
            elif key not in before:
                pair.added.append(key)
            else:
                pair.shared += 1
                if before[key].rule != after[key].rule:
                    pair.rule_changes.append((key, before[key].rule or "-", after[key].rule or "-"))
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


def changed_presence(old: dict[str, object], new: dict[str, object]) -> list[tuple[str, bool, str]]:
    """Changes one kernel has and the other lacks, with the evidence of the side that has it."""
    before, after = presence_of(old), presence_of(new)
    found = []
    for key in sorted(before.keys() & after.keys()):
        if bool(before[key]["present"]) != bool(after[key]["present"]):
            gained = bool(after[key]["present"])
            holder = after[key] if gained else before[key]
            found.append((key, gained, f"{holder['basis']}: {holder['evidence']}"))
    return found


def case_name(key: CaseKey, primary: str = "upstream") -> str:
    spec, test, params, repeat = key
    return f"{test}[{params}]" + (f" rep{repeat}" if repeat > 1 else "") + (f" ({spec})" if spec != primary else "")


def _kernel(kernel: dict[str, object]) -> str:
    return f"{kernel['label']} {kernel['release']} (build {kernel['build_id']})"


def render_diff(result: Diff, new: Results) -> str:
    regressions = sum(len(p.regressions) for p in result.pairs)
    errors = sum(len(p.errors) for p in result.pairs)
    status = status_word(result.exit_status, bool(result.incomplete))
    unfinished = "".join(f"; {side} run incomplete: {', '.join(gaps)}" for side, gaps in result.incomplete.items())
    lines = [
        f"MADV_COLLAPSE conformance diff {status}: {regressions} regressions, {errors} new infrastructure errors, "
        f"{sum(len(p.fixes) for p in result.pairs)} fixes over {len(result.pairs)} kernel pairs{unfinished}"
    ]
    lines += [f"pairing: {note}" for note in result.notes]
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
        for change_key, gained, evidence in pair.kernel_changes:
            holder, other = (pair.new, pair.base) if gained else (pair.base, pair.new)
            lines.append(f"  kernel change: {holder['label']} has {change_key}, {other['label']} lacks it ({evidence})")
        regressed = {key for key, _, _ in pair.regressions}
        moves = Counter((old, now) for key, old, now in pair.rule_changes if key not in regressed)
        why = f" because of {', '.join(k for k, _, _ in pair.kernel_changes)}" if pair.kernel_changes else ""
        for (old, now), count in sorted(moves.items()):
            # Judged against the rule that now decides them and not regressions: expected to differ.
            lines.append(f"  expectation: {_plural_cases(count)} decided by {now} instead of {old}{why}, each as it expects")
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


def _plural_cases(count: int) -> str:
    return f"{count} case" + ("" if count == 1 else "s")


def nothing_compared(result: Diff) -> str:
    """The one-line error of a diff that compared nothing: what each side holds and the way out."""
    if result.pairs:
        paired = ", ".join(f"{p.base['label']} with {p.new['label']}" for p in result.pairs)
        return f"nothing compared: the paired kernels ({paired}) share no case; compare runs of the same grids"
    sides = [
        ", ".join(f"{k['label']} {k['version']}" for k in kernels) or "no kernel" for kernels in (result.unpaired_base, result.unpaired_new)
    ]
    refused = next((note for note in result.notes if note.startswith("not paired")), "")
    return f"nothing compared: no kernel pair (base has {sides[0]}; new has {sides[1]})" + (
        f"; {refused}" if refused else "; kernels pair by label: pass --pair-any to pair them in order"
    )


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
    shown = results.display_names
    labels = {str(k["name"]): f"{shown[str(k['name'])]} {k['version']}" for k in results.kernels}
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
