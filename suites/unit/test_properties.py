"""Property-based tests of the results model and the commands built on it, over generated runs:
a round trip through results.json loses nothing, render keeps every case, diff(a, a) is empty,
and merging a run split by kernel gives the run back."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports import render_run
from reports.diff import diff
from reports.merge import merge
from reports.record import CaseClass, CaseRecord, Results, Verdict, load
from reports.results import fold_log

VERDICT_OF = {
    CaseClass.PASS: Verdict.PASS,
    CaseClass.SKIP: Verdict.SKIP,
    CaseClass.INFRASTRUCTURE: Verdict.ERROR,
    CaseClass.REGRESSION: Verdict.FAIL,
    CaseClass.DOCUMENTATION: Verdict.FAIL,
}
words = st.text(alphabet="abcdefghij-", min_size=1, max_size=8)


@st.composite
def runs(draw: st.DrawFn) -> Results:
    labels = draw(st.lists(words, min_size=1, max_size=3, unique=True))
    kernels: list[dict[str, object]] = [
        {"name": f"{label}-{i}", "label": label, "origin": f"debian:{label}", "version": "6.1.0", "release": "6.1.0-1", "build_id": str(i)}
        for i, label in enumerate(labels)
    ]
    params = draw(st.lists(words, min_size=1, max_size=5, unique=True))
    repeat = draw(st.integers(min_value=1, max_value=2))
    cases = []
    for kernel in kernels:
        for param in params:
            for rep in range(1, repeat + 1):
                case_class = draw(st.sampled_from(list(VERDICT_OF)))
                group = "documentation" if case_class is CaseClass.DOCUMENTATION else "eligibility"
                case_id = f"{kernel['label']}-{param}" + (f"-rep{rep}" if repeat > 1 else "")
                cases.append(
                    CaseRecord(
                        nodeid=f"suites/test_collapse.py::test_eligibility[{case_id}]@{kernel['name']}",
                        test="eligibility",
                        case_id=case_id,
                        params_id=param,
                        params={"memory": param},
                        kernel=str(kernel["name"]),
                        kernel_info=kernel,
                        spec="upstream",
                        repeat=rep,
                        rule=draw(st.sampled_from(["A0", "A1", "DOC.D3"])),
                        group=group,
                        expected={"result": "ok"},
                        verdict=VERDICT_OF[case_class],
                        case_class=case_class,
                        message=draw(st.none() | st.text(max_size=20)),
                        observed={"result": draw(st.sampled_from(["ok", "EINVAL"]))},
                        duration_s=draw(st.floats(min_value=0, max_value=100, allow_nan=False)),
                    )
                )
    run = {
        "run_id": "generated",
        "rule_book": "1",
        "specs": ["upstream"],
        "repeat": repeat,
        "kernel_origins": [k["origin"] for k in kernels],
        "rules": {"A0": "a", "A1": "b", "DOC.D3": "c"},
        "finished": "2026-12-01T00:00:00+0000",
    }
    return Results(run=run, kernels=kernels, cases=cases)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no per-example time limit: machines differ
@given(runs())
def test_json_round_trip_loses_nothing(results: Results) -> None:
    assert Results.from_json(json.loads(json.dumps(results.to_json()))) == results


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_render_keeps_every_case(results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        render_run(Path(tmp), results)
        assert load(Path(tmp)) == results
        render_run(Path(tmp), load(Path(tmp)))  # rendering again from results.json alone changes nothing
        assert load(Path(tmp)) == results


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_diff_of_a_run_with_itself_is_empty(results: Results) -> None:
    result = diff(results, results)
    assert not result.unpaired_base and not result.unpaired_new and len(result.pairs) == len(results.kernels)
    assert all(not (p.regressions or p.fixes or p.errors or p.changed or p.added or p.removed) for p in result.pairs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_merging_a_run_split_by_kernel_gives_it_back(results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for index, kernel in enumerate(results.kernels):
            part = Results(results.run, [kernel], [c for c in results.cases if c.kernel == kernel["name"]])
            path = Path(tmp) / f"part{index}.json"
            path.write_text(json.dumps(part.to_json()))
            parts.append(path)
        out = Path(tmp) / "merged"
        merged = fold_log(out, merge(parts, out))
        assert sorted(c.nodeid for c in merged.cases) == sorted(c.nodeid for c in results.cases)
        assert {c.nodeid: c for c in merged.cases} == {c.nodeid: c for c in results.cases}
