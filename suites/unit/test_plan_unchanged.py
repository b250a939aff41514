"""The plan moves only on purpose: every test x kernel version x config x spec plans the case ids,
deciding rules, expectations and skip reasons that suites/unit/data/plan-digests.json holds, one digest
per (test, config, spec, beside) over VERSIONS. It was written from 1cc4eb8 (the restructure changed no
digest) and again for the stable-aware bounds, which moved exactly the cases of 6.1.0 (before the
6.1.8/6.1.13 backports: A6.deny-overridden, B0.expands, B7.*-einval), 6.1.12 (B7.*-einval) and 6.12.118
(A8.forced, the 6.12.113 backport), and a kernel of a stable line nobody searched for a fix's backport
(6.3, 6.4: none-pte-ebusy, same-mm-no-cap, inside-range-returns-0) SKIPs the rules bounded by it; written
from a tree with:

    python suites/unit/test_plan_unchanged.py TREE > suites/unit/data/plan-digests.json

A change to the rule book that means to change the plan writes the file again from the new tree (and
says so in its commit); a digest that moves by accident fails here, naming the test, config and spec (the script run on
both trees, with VERSIONS cut down, finds the version).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BEFORE = Path(__file__).with_name("data") / "plan-digests.json"
# Every version a bound names, the release just below it, and the kernels the suite runs.
VERSIONS = [
    (5, 10, 262),
    (6, 0, 99),
    (6, 1, 0),
    (6, 1, 12),
    (6, 1, 192),
    (6, 3, 99),
    (6, 4, 0),
    (6, 7, 99),
    (6, 8, 0),
    (6, 10, 99),
    (6, 11, 0),
    (6, 12, 0),
    (6, 12, 95),
    (6, 12, 118),
    (6, 13, 0),
    (6, 14, 99),
    (6, 15, 0),
    (6, 17, 0),
    (6, 18, 0),
    (6, 19, 0),
    (7, 1, 5),
    (7, 2, 0),
    (7, 2, 9),
    (7, 2, 10),
    (7, 2, 13),
    (7, 3, 4),
]
REQUIRED: tuple[str, ...] = ("TRANSPARENT_HUGEPAGE", "SHMEM", "SWAP", "USERFAULTFD", "COMPACTION", "TASKSTATS", "TASK_DELAY_ACCT")
REQUIRED += ("MEMCG", "HUGETLBFS", "EXT4_FS", "BLK_DEV_RAM")
CONFIGS = {
    "unknown": {},
    "full": dict.fromkeys(REQUIRED, "y"),
    "full-ro-thp": {**dict.fromkeys(REQUIRED, "y"), "READ_ONLY_THP_FOR_FS": "m"},
    "no-thp": {"TRANSPARENT_HUGEPAGE": "n"},
    "no-swap": {**dict.fromkeys(REQUIRED, "y"), "SWAP": "n"},
}
SPECS = [("upstream", None), ("proposal", None), ("documented", None), ("proposal", "upstream"), ("documented", "upstream")]


def digests(rulebook: ModuleType) -> dict[str, str]:
    """{test/config/spec/beside: the number of cases planned over VERSIONS and a sha256 of every planned
    case's version, id, rule, group, expectation, skip reason and parameters}."""
    book = rulebook.load()
    found = {}
    for test in sorted(book.tests):
        for config_name, config in CONFIGS.items():
            for spec, beside in SPECS:
                rows = []
                for version in VERSIONS:
                    kernel = rulebook.UnbuiltKernel("k-0", "k", version, config)
                    cases = rulebook.plan(book, test, kernel, spec, beside)
                    rows += [[version, c.id, c.rule, c.group, c.expect, c.skip, c.params] for c in cases]
                text = json.dumps(rows, sort_keys=True)
                found[f"{test}/{config_name}/{spec}/{beside or '-'}"] = f"{len(rows)} {hashlib.sha256(text.encode()).hexdigest()[:16]}"
    return found


def test_the_plan_is_the_recorded_one() -> None:
    from suites import rulebook

    before: dict[str, str] = json.loads(BEFORE.read_text())
    now = digests(rulebook)
    assert now.keys() == before.keys()
    changed = [key for key in before if now[key] != before[key]]
    assert not changed, f"{len(changed)} plans changed, e.g. {changed[:5]}"


@pytest.mark.parametrize("test", ["eligibility", "availability", "largefolio"])
def test_the_defaults_rule_leads_every_grid(test: str) -> None:
    """X0 is written once ([[all_tests.rule]]) and still decides every grid before 6.1, first."""
    from suites import rulebook

    book = rulebook.load()
    assert next(rule for rule in book.rules if rule.test == test).id == "X0"


if __name__ == "__main__":  # python suites/unit/test_plan_unchanged.py TREE: the digests of TREE's rule book
    sys.path.insert(0, sys.argv[1])
    import suites.rulebook

    assert Path(suites.rulebook.__file__).is_relative_to(Path(sys.argv[1]).resolve()), suites.rulebook.__file__
    print(json.dumps(digests(suites.rulebook), indent=0, sort_keys=True))
