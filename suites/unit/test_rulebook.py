"""The rule book as data: it loads, every planned case is decided, and key rules say what the kernel does."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from fixtures.observation import CallOutcome, Evidence, Fragmentation, Fragmenter, Observation, Snapshot
from suites import rulebook

BOOK = rulebook.load()
# Kernels of the stable lines searched for backports (a line nobody searched SKIPs the rules bounded
# by a fix: test_presence.py).
VERSIONS = [(5, 10, 262), (6, 1, 192), (6, 12, 0), (6, 12, 118), (7, 2, 13), (7, 3, 4)]
FULL_CONFIG = {"TRANSPARENT_HUGEPAGE": "y"}


def decide(params: dict[str, str], version: tuple[int, int, int], spec: str = "upstream") -> rulebook.Rule:
    base = {"memory": "anon", "mode": "madvise", "advice": "noadvice", "prctl": "noprctl", "caller": "madvise", "nice": "nice"}
    rule = BOOK.decide("eligibility", {**base, **params}, BOOK.at_version(version), spec)
    assert rule is not None
    return rule


def test_rule_ids_are_unique_per_test() -> None:
    keys = [(r.test, r.id, r.versions.text) for r in BOOK.rules]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("spec", rulebook.SPECS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("test", sorted(BOOK.tests))
def test_every_case_is_decided(test: str, version: tuple[int, int, int], spec: str) -> None:
    for case in rulebook.plan(BOOK, test, rulebook.UnbuiltKernel("k-0", "k", version, FULL_CONFIG), spec):
        assert case.rule is not None, case
        assert case.skip or case.expect.get("result") or case.expect.get("outcome") or case.expect.get("refused"), case


def test_madv_collapse_absent_before_6_1() -> None:
    cases = rulebook.plan(BOOK, "eligibility", rulebook.UnbuiltKernel("k-0", "k", (5, 10, 262), FULL_CONFIG), "upstream")
    assert all(c.skip and "6.1" in c.skip for c in cases)
    (availability,) = rulebook.plan(BOOK, "availability", rulebook.UnbuiltKernel("k-0", "k", (5, 10, 262), FULL_CONFIG), "upstream")
    assert availability.rule == "X0" and availability.expect == {"result": "EINVAL", "pmd_mapped": False}


def test_missing_config_skips_with_the_option_named() -> None:
    cases = rulebook.plan(BOOK, "eligibility", rulebook.UnbuiltKernel("k-0", "k", (6, 1, 0), {"TRANSPARENT_HUGEPAGE": "n"}), "upstream")
    assert {c.skip for c in cases} == {"kernel lacks CONFIG_TRANSPARENT_HUGEPAGE"}


def test_self_process_madvise_needs_cap_sys_nice_only_before_6_12() -> None:
    params = {"caller": "self", "nice": "nonice"}
    assert decide(params, (6, 1, 192)).expect["result"] == "EPERM"
    assert decide(params, (6, 12, 0)).expect["result"] == "ok"


def test_permission_check_precedes_vma_checks() -> None:
    assert decide({"caller": "remote", "nice": "nonice", "advice": "nohugepage"}, (7, 2, 0)).id == "D2.remote"


@pytest.mark.parametrize("mode", ["never", "madvise", "always"])
def test_merged_semantics_ignore_sysfs_mode_but_not_nohugepage(mode: str) -> None:
    assert decide({"mode": mode}, (6, 1, 0)).expect == {"result": "ok", "pmd_mapped": True}
    assert decide({"mode": mode, "advice": "nohugepage"}, (6, 1, 0)).expect["result"] == "EINVAL"
    assert decide({"mode": mode, "prctl": "prctl"}, (6, 1, 0)).expect["result"] == "EINVAL"


def test_case_ids_read_as_parameters() -> None:
    case = rulebook.plan(BOOK, "eligibility", rulebook.UnbuiltKernel("bookworm-abc", "bookworm", (6, 1, 0), FULL_CONFIG), "upstream")[0]
    assert case.id == "bookworm-anon-never-noadvice-noprctl-madvise-nice"


def observation(
    ret: int, errno: str | None, after_huge: bool, flags_after: list[str] | None = None, caller: str = "madvise"
) -> Observation:
    before = Snapshot(vma="0x200000-0x400000", pmd_kb=0, vmflags=("rd", "wr"), blocks="0")
    after = replace(
        before, pmd_mapped=after_huge, vmflags=tuple(flags_after or ["rd", "wr"]), pmd_kb=2048 if after_huge else 0, blocks="01"[after_huge]
    )
    call = CallOutcome(ret=ret, errno=errno)
    return Observation(caller=caller, vmstat={}, after=after, data_intact=True, call=call, length=2 << 20, before=before)


def test_judge_accepts_a_matching_observation() -> None:
    summary = rulebook.summarize(observation(2 << 20, None, True, caller="remote"))
    assert rulebook.judge({"result": "ok", "pmd_mapped": True}, summary) == []


def test_judge_reports_expected_and_observed_on_one_line() -> None:
    summary = rulebook.summarize(observation(-1, "EINVAL", False))
    mismatches = rulebook.judge({"result": "ok", "pmd_mapped": True}, summary)
    assert rulebook.failure_line(mismatches) == "expected result=ok pmd_mapped=True; observed result=EINVAL pmd_mapped=False"


def test_judge_catches_vma_flag_changes_and_odd_return_values() -> None:
    summary = rulebook.summarize(observation(4096, None, True, ["rd", "wr", "hg"], caller="self"))
    fields = {field for field, _, _ in rulebook.judge({"result": "ok", "pmd_mapped": True}, summary)}
    assert fields == {"result", "vmflags"}


# ------------------------------------------------------------------ version bounds and their sources


def mini_book(change: Mapping[str, object], versions: str = ">=6.11", bounds: dict[str, str] | None = None) -> dict[str, Any]:
    """The smallest rules.toml, as parsed data: one test, one rule bounded by one change."""
    rule = {"id": "R", "test": "t", "group": "g", "statement": "s", "source": "s", "versions": versions, "skip": "x"}
    return {
        "version": "0",
        "invariants": {},
        "test": {"t": {"description": "d", "dimensions": {"memory": ["anon"]}}},
        "change": {"c": change},
        "rule": [{**rule, "bounds": {"6.11": "c"} if bounds is None else bounds}],
    }


COMMIT: dict[str, object] = {
    "commit": "4b98995530b7",
    "release": "v6.11",
    "title": "mm: shmem: add multi-size THP sysfs interface",
    "stable": [],
    "stable_lines": ["6.1"],
    "stable_read": "title absent from the stable updates of Debian bookworm 6.1.192-3",
}


def test_a_sourced_bound_parses_into_its_change() -> None:
    (rule,) = rulebook.parse(mini_book(COMMIT)).rules
    change = rule.bounds["6.11"]
    assert (change.key, change.commit, change.release, change.stable) == ("c", "4b98995530b7", "v6.11", ())
    assert change.label == "4b98995530b7, v6.11"
    (backported,) = rulebook.parse(mini_book({**COMMIT, "stable": ["6.1.50", "6.6.3"]})).rules
    assert backported.bounds["6.11"].label == "4b98995530b7, v6.11; stable 6.1.50, 6.6.3"


@pytest.mark.parametrize(
    "change",
    [
        {},  # no commit at all
        {"title": "a title alone"},
        {**COMMIT, "commit": "4b98995530"},  # 10 hex digits: too short to name a commit
        {**COMMIT, "commit": "4B98995530B7"},
        {**COMMIT, "commit": "not-a-commit"},
        {key: value for key, value in COMMIT.items() if key != "release"},
        {**COMMIT, "release": "6.11"},  # a release is a tag
        {**COMMIT, "release": "v7.2.10"},  # the mainline release, never a stable one
        {key: value for key, value in COMMIT.items() if key != "title"},
        {key: value for key, value in COMMIT.items() if key != "stable"},  # no stable list, not even an empty one
        {key: value for key, value in COMMIT.items() if key != "stable_read"},  # "no backport" without where it was checked
        {**COMMIT, "stable_read": " "},
        {**COMMIT, "stable": ["6.12"]},  # a stable release has its sublevel
        {**COMMIT, "stable": "6.12.113"},
        {key: value for key, value in COMMIT.items() if key != "stable_lines"},  # which lines were searched
        {**COMMIT, "stable_lines": ["6.1.192"]},  # a line, not a release
        {"observed": "seen on 7.2.13"},  # an observation is no longer a bound
        {**COMMIT, "first_seen": "v6.11"},
    ],
)
def test_a_bound_without_its_mainline_commit_and_stable_list_is_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="change c"):
        rulebook.parse(mini_book(change))


@pytest.mark.parametrize(
    "versions,bounds",
    [
        (">=6.11", {}),  # a bound with no source at all
        (">=6.11,<6.18", {"6.11": "c"}),  # the upper bound unsourced
        (">=6.11", {"6.11": "c", "6.18": "c"}),  # a source for a bound the rule does not have
        (">=6.11", {"6.11": "nowhere"}),
        (">=6.12", {"6.12": "c"}),  # the change was first released in 6.11, not 6.12
        ("<=6.11", {"6.11": "c"}),  # bounds are 'has the change' (>=) or 'lacks it' (<)
        (">6.11", {"6.11": "c"}),
    ],
)
def test_every_version_of_a_rule_needs_its_own_source(versions: str, bounds: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="rule R"):
        rulebook.parse(mini_book(COMMIT, versions, bounds))


def test_a_bound_holds_by_the_change_not_the_version() -> None:
    """'<7.3' means 'lacks 72c3d682c165': 6.12.113 and later carry it, so they are past the bound."""
    change = {**COMMIT, "commit": "72c3d682c165", "release": "v7.3", "stable": ["6.12.113", "7.2.10"], "stable_lines": ["6.12", "7.2"]}
    book = rulebook.parse(mini_book(change, "<7.3", {"7.3": "c"}))
    (rule,) = book.rules
    assert [rule.holds_for(book.at_version(v)) for v in ((6, 12, 95), (6, 12, 113), (7, 2, 9), (7, 2, 10), (7, 3, 0))] == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_every_bound_in_the_rule_book_is_sourced() -> None:
    for rule in BOOK.rules:
        assert set(rulebook.bound_versions(rule.versions.text)) == set(rule.bounds), rule.id
        for change in rule.bounds.values():
            assert len(change.commit) >= 12 and change.release and change.stable_read, change


def test_documentation_rules_quote_their_sentence_and_its_release() -> None:
    doc_rules = [rule for rule in BOOK.rules if rule.group == "documentation"]
    assert doc_rules
    for rule in doc_rules:
        assert re.search(r"man-pages-\d+\.\d+ man/man\d/\S+\.\d:\d+|transhuge\.rst of Linux \d+\.\d+", rule.source), rule.id
        assert re.search(r"'[^']{40,}[.;]'", rule.source), f"{rule.id} quotes no whole sentence"


def test_doc_d2_is_gone_the_cap_sys_nice_sentence_is_about_other_processes() -> None:
    assert "DOC.D2" not in {rule.id for rule in BOOK.rules}
    assert decide({"caller": "self", "nice": "nonice"}, (7, 2, 13), "documented").expect["result"] == "ok"


@pytest.mark.parametrize(
    "version,refused,inside",
    [((6, 12, 95), "EINVAL", "EINVAL"), ((6, 12, 118), "ok", "EINVAL"), ((7, 2, 9), "EINVAL", "ok"), ((7, 2, 13), "ok", "ok")],
)
def test_forced_shmem_collapse_and_inside_range_bounds(version: tuple[int, int, int], refused: str, inside: str) -> None:
    per_size = {"memory": "shmem", "mode": "never", "per_size": "never", "caller": "madvise"}
    decided = BOOK.decide("per_size", per_size, BOOK.at_version(version), "upstream")
    assert decided is not None and decided.expect["result"] == refused
    ranges = {"memory": "anon", "mode": "madvise", "range": "inside-one-block", "caller": "madvise"}
    decided = BOOK.decide("ranges", ranges, BOOK.at_version(version), "upstream")
    assert decided is not None and decided.expect["result"] == inside


@pytest.mark.parametrize(
    "version,config,ro,rw",
    [
        ((6, 12, 95), {"READ_ONLY_THP_FOR_FS": "y"}, "A16.ro", "A16.writer"),
        ((6, 12, 95), {"TRANSPARENT_HUGEPAGE": "y"}, "A16.ro-unconfigured", "A16.writer"),
        ((6, 1, 192), {"READ_ONLY_THP_FOR_FS": "m"}, "A16.ro", "A16.writer"),
        ((7, 2, 13), {"TRANSPARENT_HUGEPAGE": "y"}, "A16", "A16"),
        ((6, 12, 95), {}, None, "A16.writer"),  # config unknown: no rule with a config condition holds
    ],
)
def test_file_collapse_rules_follow_version_and_config(
    version: tuple[int, int, int], config: dict[str, str], ro: str | None, rw: str
) -> None:
    def rule(memory: str) -> str | None:
        decided = BOOK.decide(
            "largefolio", {"memory": memory, "mode": "never", "caller": "madvise"}, BOOK.at_version(version), "upstream", config
        )
        return decided.id if decided else None

    assert (rule("ext4-ro"), rule("ext4-rw")) == (ro, rw)


def test_a_config_condition_takes_y_or_n_only() -> None:
    data = tomllib.loads(rulebook.RULES_FILE.read_text())
    data["rule"][-1]["config"] = {"READ_ONLY_THP_FOR_FS": "m"}
    with pytest.raises(ValueError, match="'config' values are y or n"):
        rulebook.parse(data)


# ------------------------------------------------------------------ E2, E5, C7.wp (issue 11)


def allocation_observation(ret: int, errno: str | None, huge: bool, caller: dict[str, int], fault: dict[str, int]) -> Observation:
    observed = observation(ret, errno, huge, caller="remote")
    last = Fragmenter(thps_grabbed=1, rounds=1, free_huge_blocks=0, pcp_pages={}, mem_free_mib=1, seconds=0.0)
    fragmentation = Fragmentation(last=last, attempts=1, fault_thp=False, fault_delays=fault, history=())
    return replace(
        observed,
        call=replace(observed.call, delays=caller),
        evidence=Evidence(pressure=fragmentation),
        vmstat={"compact_stall": 1, "allocstall": 0},
    )


STALL = {"compact_count": 1, "freepages_count": 0}
NO_STALL = {"compact_count": 0, "freepages_count": 0}


def e2() -> dict[str, object]:
    params = {"memory": "anon", "mode": "always", "pressure": "fragmented", "caller": "remote"}
    rule = BOOK.decide("allocation", params, BOOK.at_version((6, 12, 95)), "upstream")
    assert rule is not None and rule.id == "E2"
    return rule.expect


@pytest.mark.parametrize("ret,errno,huge", [(2 << 20, None, True), (-1, "ENOMEM", False)])
def test_e2_accepts_a_thp_or_enomem_when_the_caller_stalled(ret: int, errno: str | None, huge: bool) -> None:
    summary = rulebook.summarize(allocation_observation(ret, errno, huge, STALL, NO_STALL))
    assert rulebook.judge(e2(), summary) == []


@pytest.mark.parametrize(
    "ret,errno,huge,caller,fault,failing",
    [
        (-1, "EINVAL", False, STALL, NO_STALL, {"outcome"}),  # another errno
        (-1, "ENOMEM", False, NO_STALL, NO_STALL, {"caller_stalled"}),  # gave up without compaction
        (2 << 20, None, True, STALL, STALL, {"fault_stalled"}),  # defrag=never ignored by the fault
        (2 << 20, None, False, STALL, NO_STALL, {"outcome", "pmd_mapped"}),  # success without a THP
    ],
)
def test_e2_fails_what_the_kernel_does_not_promise(
    ret: int, errno: str | None, huge: bool, caller: dict[str, int], fault: dict[str, int], failing: set[str]
) -> None:
    summary = rulebook.summarize(allocation_observation(ret, errno, huge, caller, fault))
    fields = {field for field, _, _ in rulebook.judge(e2(), summary)}
    assert fields == failing - {"pmd_mapped"}, summary


def test_e5_runs_where_it_can_fail_and_keeps_its_control() -> None:
    assert BOOK.tests["persistence"].dimensions["mode"] == ("always",)
    cases = {
        c.params["advice"]: c
        for c in rulebook.plan(BOOK, "persistence", rulebook.UnbuiltKernel("k-0", "k", (6, 12, 95), FULL_CONFIG), "upstream")
    }
    assert cases["noadvice"].rule == "E5" and cases["noadvice"].expect["recollapsed"] is False
    assert cases["hugepage-other-vma"].rule == "E5.control" and cases["hugepage-other-vma"].expect["recollapsed"] is True


@pytest.mark.parametrize(
    "populate,version,rule,result",
    [
        ("half", (6, 1, 192), "C7.wp", "EINVAL"),
        ("half", (6, 12, 95), "C7.wp", "EINVAL"),
        ("second-half", (6, 1, 192), "C7.wp-none", "EINVAL"),
        ("second-half", (6, 12, 95), "C7.wp-none-ebusy", "EBUSY"),
        ("second-half", (7, 2, 13), "C7.wp-none-ebusy", "EBUSY"),
    ],
)
def test_c7_wp_depends_on_which_half_is_written(populate: str, version: tuple[int, int, int], rule: str, result: str) -> None:
    params = {"memory": "anon", "mode": "madvise", "uffd": "wp", "populate": populate, "caller": "madvise"}
    decided = BOOK.decide("uffd", params, BOOK.at_version(version), "upstream")
    assert decided is not None and (decided.id, decided.expect["result"]) == (rule, result)


# ------------------------------------------------------------------ rules of every test ([[every_test.rule]])


def two_test_book(every: dict[str, Any]) -> dict[str, Any]:
    """Two tests, the first with a rule of its own named like the rule of every test, the second without."""
    rule = {"group": "g", "statement": "s", "source": "s", "expect": {"result": "ok"}}
    grid = {"description": "d", "dimensions": {"memory": ["anon"]}}
    return {
        "version": "0",
        "invariants": {},
        "test": {"t": grid, "u": grid, "v": grid},
        "every_test": {"rule": [every]},
        "rule": [{**rule, "id": "X", "test": "t"}, {**rule, "id": "Y", "test": "t"}, {**rule, "id": "Y", "test": "u"}],
    }


def test_a_rule_of_every_test_leads_each_test_that_has_none_of_its_own() -> None:
    book = rulebook.parse(two_test_book({"id": "X", "group": "g", "statement": "s", "source": "s", "skip": "why"}))
    assert [(rule.test, rule.id, rule.skip) for rule in book.rules] == [
        ("t", "X", None),
        ("t", "Y", None),
        ("u", "X", "why"),
        ("u", "Y", None),
        ("v", "X", "why"),
    ]


@pytest.mark.parametrize("extra", [{"test": "t"}, {"when": {"memory": ["anon"]}}])
def test_a_rule_of_every_test_names_no_test_and_no_when(extra: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="every_test rule X"):
        rulebook.parse(two_test_book({"id": "X", "group": "g", "statement": "s", "source": "s", "skip": "why", **extra}))
