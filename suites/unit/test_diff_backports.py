"""A stable-aware diff: two kernels of one line, one with a backport and one without, are expected
to behave otherwise; diff names the change and the cases another rule decides, and calls none of
them a regression (issue "Right on the kernels people run")."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from reports.diff import diff, render_diff
from reports.exits import Exit
from reports.record import Results, load

SAMPLE = Path(__file__).with_name("data") / "results-sample.json"


def one_kernel(results: Results, label: str, version: str, has_backport: bool, rule: str) -> Results:
    """RESULTS cut to its first kernel, relabelled, with the change present or absent and every case decided by RULE."""
    first = results.kernels[0]
    evidence = "'mm: x' under ChangeLog-6.12.113 in changelog.gz" if has_backport else "'mm: x' in none of the 95 stable updates"
    kernel = {
        **first,
        "label": label,
        "version": version,
        "changes": {"forced": {"present": has_backport, "basis": "Debian changelog", "evidence": evidence}},
    }
    cases = [dataclasses.replace(c, rule=rule) for c in results.cases if c.kernel == first["name"] and c.spec == results.primary]
    return Results(run={**results.run, "kernel_origins": [first["origin"]]}, kernels=[kernel], cases=cases)


def test_a_kernel_that_gained_a_backport_is_expected_to_differ_and_is_no_regression() -> None:
    sample = load(SAMPLE)
    base = one_kernel(sample, "bookworm-backports", "6.12.95", False, "A8.refused")
    new = one_kernel(sample, "trixie", "6.12.118", True, "A8.forced")
    result = diff(base, new, pair_any=True)
    (pair,) = result.pairs
    assert [(key, gained) for key, gained, _ in pair.kernel_changes] == [("forced", True)]
    assert {(old, now) for _, old, now in pair.rule_changes} == {("A8.refused", "A8.forced")}
    assert result.exit_status is Exit.CLEAN and not pair.regressions
    text = render_diff(result, new)
    assert "kernel change: trixie has forced, bookworm-backports lacks it (Debian changelog: 'mm: x' under ChangeLog-6.12.113" in text
    assert (
        f"expectation: {len(pair.rule_changes)} cases decided by A8.forced instead of A8.refused because of forced, each as it expects"
        in text
    )


def test_kernels_with_the_same_changes_report_none() -> None:
    sample = load(SAMPLE)
    base = one_kernel(sample, "a", "6.12.95", False, "A8.refused")
    new = one_kernel(sample, "a", "6.12.95", False, "A8.refused")
    (pair,) = diff(base, new).pairs
    assert not pair.kernel_changes and not pair.rule_changes
    assert "kernel change" not in render_diff(diff(base, new), new)


def test_a_pair_that_shares_no_case_compared_nothing() -> None:
    sample = load(SAMPLE)
    base = one_kernel(sample, "a", "6.12.95", False, "A8.refused")
    new = dataclasses.replace(base, cases=[dataclasses.replace(c, test=c.test + "-other") for c in base.cases])
    result = diff(base, new)
    assert result.pairs and not result.compared and result.exit_status is Exit.NOTHING_COMPARED


def test_diff_of_one_run_with_one_kernel_compares_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    sample = load(SAMPLE)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(one_kernel(sample, "a", "6.12.95", False, "A8").to_json()))
    proc = subprocess.run([sys.executable, "-m", "reports", "diff", str(run)], capture_output=True, text=True)
    assert proc.returncode == Exit.NOTHING_COMPARED and "holds one kernel" in proc.stderr
