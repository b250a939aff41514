"""What a series does to the suite (pure logic, no kernel): reports.diff's verdict for the base /
series pair, and the first patch of the series behind each regression, found by bisecting within
the series with at most ceil(log2(n)) tested patches."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from reports.diff import CaseKey, Change, case_key, diff
from reports.exits import judged_exit
from reports.record import CaseClass, CaseRecord, Results
from workflows.bisect import BISECT_ANSWER

# pytest -k accepts these characters in one word.
K_WORD = re.compile(r"^[\w.+\-\[\]:/]+$")


@dataclass(frozen=True)
class Verdict:
    regressions: list[Change]  # a regression on the series, not on the base
    fixes: list[Change]
    changes: list[Change]  # any other change of class, new infrastructure errors included
    unjudged: list[CaseKey]  # infrastructure errors on either side: nothing known of those
    records: dict[CaseKey, CaseRecord]  # the series' records

    @property
    def exit_status(self) -> int:
        """workflows.bisect's answers, in the one precedence: a regression is definite even beside harness errors."""
        return BISECT_ANSWER[judged_exit(bool(self.regressions), bool(self.unjudged))]


def compare(base: Results, new: Results) -> Verdict:
    """reports.diff's pairs, folded: a case the series run lacks is unjudged, and a case new in it
    that is a regression is one (the base could not have passed it)."""
    regressions, fixes, changes, missing = [], [], [], []
    records = {case_key(c): c for c in new.cases}
    for pair in diff(base, new).pairs:
        regressions += pair.regressions
        regressions += [
            (key, CaseClass.SKIP, CaseClass.REGRESSION) for key in pair.added if records[key].case_class is CaseClass.REGRESSION
        ]
        fixes += pair.fixes
        changes += pair.errors + pair.changed
        missing += pair.removed
    broken = {case_key(c) for run in (base, new) for c in run.cases if c.case_class is CaseClass.INFRASTRUCTURE}
    return Verdict(regressions, fixes, changes, sorted(broken | set(missing)), records)


def still_broken(step: Results, keys: list[CaseKey]) -> dict[CaseKey, bool | None]:
    """Per regressed case, on one tested patch: True (a regression), False (it passed), None (not
    judged: an ERROR, a SKIP, a missing case: no evidence either way, as for workflows.bisect)."""
    classes = {case_key(c): c.case_class for c in step.cases}
    found: dict[CaseKey, bool | None] = {}
    for key in keys:
        cls = classes.get(key)
        found[key] = True if cls is CaseClass.REGRESSION else False if cls is CaseClass.PASS else None
    return found


@dataclass(frozen=True)
class Blame:
    good: int  # the last patch index known good (0: the base)
    bad: int  # the first patch index known bad

    @property
    def exact(self) -> bool:
        return self.bad == self.good + 1


def bisect(n: int, keys: list[CaseKey], observe: Callable[[int], dict[CaseKey, bool | None]]) -> dict[CaseKey, Blame]:
    """The first bad patch (1..n) of each regressed key, the base (0) being good and patch n bad.
    OBSERVE(i) builds and runs patch i; its answers are shared between keys, so one regression
    costs ceil(log2(n)) observations, and several caused by one patch cost no more."""
    seen: dict[int, dict[CaseKey, bool | None]] = {0: dict.fromkeys(keys, False), n: dict.fromkeys(keys, True)}
    blame: dict[CaseKey, Blame] = {}
    for key in keys:
        good = max(i for i, answers in seen.items() if answers.get(key) is False)
        bad = min(i for i, answers in seen.items() if i > good and answers.get(key) is True)
        while bad - good > 1:
            mid = (good + bad) // 2
            if mid not in seen:
                seen[mid] = observe(mid)
            answer = seen[mid].get(key)
            if answer is None:
                break  # that patch could not be judged: the blame stays a range
            good, bad = (good, mid) if answer else (mid, bad)
        blame[key] = Blame(good, bad)
    return blame


def selection(keys: list[CaseKey]) -> str:
    """A pytest -k expression for the cases of KEYS (perhaps with a few whose ids contain theirs,
    which still_broken ignores)."""
    terms = [f"(test_{test} and {params})" if K_WORD.match(params) else f"test_{test}" for _spec, test, params, _ in sorted(set(keys))]
    return " or ".join(dict.fromkeys(terms))
