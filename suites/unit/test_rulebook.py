"""The rule book as data: it loads, every planned case is decided, and key rules say what the kernel does."""

from __future__ import annotations

import pytest

from suites import rulebook

BOOK = rulebook.load()
VERSIONS = [(5, 10, 262), (6, 1, 192), (6, 11, 0), (6, 12, 0), (7, 2, 13)]
FULL_CONFIG = {"TRANSPARENT_HUGEPAGE": "y"}


def decide(params: dict[str, str], version: tuple[int, int, int], spec: str = "upstream") -> rulebook.Rule:
    base = {"memory": "anon", "mode": "madvise", "advice": "noadvice", "prctl": "noprctl", "caller": "madvise", "nice": "nice"}
    rule = BOOK.decide("eligibility", {**base, **params}, version, spec)
    assert rule is not None
    return rule


@pytest.mark.parametrize(
    "text,inside,outside", [("<6.1", (5, 10, 0), (6, 1, 0)), (">=6.1,<6.12", (6, 11, 9), (6, 12, 0)), ("", (1, 0, 0), None)]
)
def test_version_range(text: str, inside: tuple[int, int, int], outside: tuple[int, int, int] | None) -> None:
    assert inside in rulebook.VersionRange(text)
    if outside:
        assert outside not in rulebook.VersionRange(text)


def test_rule_ids_are_unique_per_test() -> None:
    keys = [(r.test, r.id, r.versions.text) for r in BOOK.rules]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("spec", rulebook.SPECS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("test", sorted(BOOK.tests))
def test_every_case_is_decided(test: str, version: tuple[int, int, int], spec: str) -> None:
    for case in rulebook.plan(BOOK, test, "k-0", "k", version, FULL_CONFIG, spec):
        assert case.rule is not None, case
        assert case.skip or case.expect.get("result"), case


def test_madv_collapse_absent_before_6_1() -> None:
    cases = rulebook.plan(BOOK, "eligibility", "k-0", "k", (5, 10, 262), FULL_CONFIG, "upstream")
    assert all(c.skip and "6.1" in c.skip for c in cases)
    (availability,) = rulebook.plan(BOOK, "availability", "k-0", "k", (5, 10, 262), FULL_CONFIG, "upstream")
    assert availability.rule == "X0" and availability.expect == {"result": "EINVAL", "pmd_mapped": False}


def test_missing_config_skips_with_the_option_named() -> None:
    cases = rulebook.plan(BOOK, "eligibility", "k-0", "k", (6, 1, 0), {"TRANSPARENT_HUGEPAGE": "n"}, "upstream")
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
    case = rulebook.plan(BOOK, "eligibility", "bookworm-abc", "bookworm", (6, 1, 0), FULL_CONFIG, "upstream")[0]
    assert case.id == "bookworm-anon-never-noadvice-noprctl-madvise-nice"


def observation(ret: int, errno: str | None, after_huge: bool, flags_after: list[str] | None = None) -> dict[str, object]:
    before = {"pmd_mapped": False, "vmflags": ["rd", "wr"], "views_agree": True, "pmd_kb": 0, "thp_pages": 0}
    after = {**before, "pmd_mapped": after_huge, "vmflags": flags_after or ["rd", "wr"], "pmd_kb": 2048 if after_huge else 0}
    return {"call": {"ret": ret, "errno": errno}, "length": 2 << 20, "before": before, "after": after, "data_intact": True}


def test_judge_accepts_a_matching_observation() -> None:
    summary = rulebook.summarize({"caller": "remote"}, observation(2 << 20, None, True))
    assert rulebook.judge({"result": "ok", "pmd_mapped": True}, summary) == []


def test_judge_reports_expected_and_observed_on_one_line() -> None:
    summary = rulebook.summarize({"caller": "madvise"}, observation(-1, "EINVAL", False))
    mismatches = rulebook.judge({"result": "ok", "pmd_mapped": True}, summary)
    assert rulebook.failure_line(mismatches) == "expected result=ok pmd_mapped=True; observed result=EINVAL pmd_mapped=False"


def test_judge_catches_vma_flag_changes_and_odd_return_values() -> None:
    summary = rulebook.summarize({"caller": "self"}, observation(4096, None, True, ["rd", "wr", "hg"]))
    fields = {field for field, _, _ in rulebook.judge({"result": "ok", "pmd_mapped": True}, summary)}
    assert fields == {"result", "vmflags"}


def test_readme_shows_the_current_rule_table() -> None:
    readme = rulebook.README.read_text()
    assert rulebook.TABLE_BEGIN in readme, "README lost its rule-table markers"
    assert rulebook.readme_with_table(readme, rulebook.markdown_table(BOOK)) == readme, (
        "README's rule table is stale: python -m suites.rulebook --update-readme"
    )
