"""make bench's per-grid profile (workflows/bench.py): the aggregation of the guest's phase times,
and the guest's lap clock that records them (fixtures/workload.py Laps)."""

from __future__ import annotations

import pytest

from fixtures.observation import Observation, from_json, to_json
from fixtures.workload import Laps
from reports.exits import Exit, UserError
from reports.record import CaseRecord, Verdict
from workflows import bench


def case(
    test: str, params: str, guest_s: float | None, phases: dict[str, float] | None, spec: str = "upstream", verdict: Verdict = Verdict.PASS
) -> CaseRecord:
    raw: dict[str, object] = {"workload_s": guest_s} if phases is None else {"workload_s": guest_s, "phases": phases}
    return CaseRecord(
        nodeid=f"suites/test_collapse.py::test_{test}[{params}]@k-1",
        test=test,
        case_id=params,
        params_id=params,
        params={},
        kernel="k-1",
        kernel_info={"label": "k"},
        spec=spec,
        repeat=1,
        rule="A1",
        group=test,
        expected=None,
        verdict=verdict,
        raw=raw,
        guest_s=guest_s,
    )


def test_a_grid_shows_its_median_guest_time_and_its_phases_by_share_with_the_rest_as_other() -> None:
    cases = [
        case("eligibility", "a", 0.100, {"snapshot.before": 0.060, "call": 0.020}),
        case("eligibility", "b", 0.200, {"snapshot.before": 0.100, "call": 0.090}),
        case("eligibility", "c", 0.300, {"snapshot.before": 0.200, "call": 0.040}),
    ]
    (profile,) = bench.grid_profiles(cases)
    assert (profile.kernel, profile.grid, profile.cases) == ("k", "eligibility", 3)
    assert profile.median_guest_ms == pytest.approx(200.0)
    assert [f.phase for f in profile.phases] == ["snapshot.before", "call", bench.OTHER]
    snapshot, call, other = profile.phases
    assert snapshot.median_ms == pytest.approx(100.0) and snapshot.share == pytest.approx(0.36 / 0.6)
    assert call.median_ms == pytest.approx(40.0) and call.share == pytest.approx(0.15 / 0.6)
    assert other.median_ms == pytest.approx(20.0) and sum(f.share for f in profile.phases) == pytest.approx(1.0)


def test_a_phase_only_some_cases_take_has_its_median_over_those_and_its_share_over_all() -> None:
    cases = [case("eligibility", "a", 0.1, {"call": 0.1}), case("eligibility", "b", 0.1, {"call": 0.05, "caller.fork": 0.05})]
    (profile,) = bench.grid_profiles(cases)
    fork = next(f for f in profile.phases if f.phase == "caller.fork")
    assert fork.median_ms == pytest.approx(50.0) and fork.share == pytest.approx(0.25)


def test_skipped_cases_and_a_further_specs_reused_observations_are_not_counted() -> None:
    cases = [
        case("ranges", "a", 0.1, {"call": 0.1}),
        case("ranges", "a", 0.1, {"call": 0.1}, spec="mm-unstable"),  # the same observation, judged again
        case("ranges", "b", None, None, verdict=Verdict.SKIP),
        case("blocks", "a", 0.4, None),  # recorded before phases were timed
    ]
    ranges, blocks = bench.grid_profiles(cases)
    assert (ranges.grid, ranges.cases, blocks.grid, blocks.cases) == ("ranges", 1, "blocks", 1)
    assert blocks.phases == () and blocks.median_guest_ms == pytest.approx(400.0)


def test_the_table_has_one_line_per_grid_with_its_top_phases() -> None:
    lines = bench.profile_lines(bench.grid_profiles([case("eligibility", "a", 0.1, {"call": 0.06, "verify": 0.03})]), top=2)
    assert len(lines) == 3
    assert lines[2].split()[:4] == ["k", "eligibility", "1", "100.0"]
    assert lines[2].endswith("call 60.0 (60%), verify 30.0 (30%)")


def test_an_unknown_grid_is_refused_and_a_known_one_selects_its_test_function() -> None:
    assert bench.grid_selection(["eligibility", "ranges"]) == "test_eligibility or test_ranges"
    with pytest.raises(UserError, match="--grid nope: no such grid"):
        bench.grid_selection(["nope"])


def test_profile_of_a_missing_run_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--profile", "/nonexistent-run"]) == Exit.USAGE
    assert "no results.json" in capsys.readouterr().err


def test_laps_charge_each_phase_the_time_since_the_last_and_inner_phases_as_they_are() -> None:
    laps = Laps()
    laps.last -= 1.0  # one second "spent" before the first lap
    laps.lap("first")
    laps.last -= 0.5
    laps.lap_around("owner.setup", {"fill": 0.2, "make_region.memory": 0.1})
    laps.last -= 0.25
    laps.lap("first")  # a phase met twice adds up
    spent = laps.spent
    assert spent["first"] == pytest.approx(1.25, abs=0.01) and spent["fill"] == 0.2 and spent["make_region.memory"] == 0.1
    assert spent["owner.setup"] == pytest.approx(0.2, abs=0.01)


def test_phases_travel_in_the_observation_and_are_left_out_when_absent() -> None:
    data = {
        "caller": "madvise",
        "vmstat": {},
        "after": {"vma": "0x0-0x1", "pmd_kb": 0, "vmflags": []},
        "before": {"vma": "0x0-0x1", "pmd_kb": 0, "vmflags": []},
        "data_intact": True,
        "call": {"ret": 0, "errno": None, "attempts": 1},
        "length": 1,
        "knobs_restored": {},
    }
    timed = from_json(Observation, {**data, "phases": {"call": 0.01, "fill": 0.002}})
    assert timed.phases == {"call": 0.01, "fill": 0.002}
    written, untimed = to_json(timed), to_json(from_json(Observation, data))
    assert isinstance(written, dict) and isinstance(untimed, dict)
    assert written["phases"] == {"call": 0.01, "fill": 0.002} and "phases" not in untimed
