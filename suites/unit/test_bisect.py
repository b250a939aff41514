"""workflows.bisect as `git bisect run` sees it: run from a kernel tree (never from the repo), every
start-up error 125, a -k that selects nothing refused before the build, the answer from each case's class."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.record import Results
from workflows import bisect, build
from workflows.bisect import verdict_of
from workflows.commands import BAD, GOOD, SKIP

CHEAP = "ranges and inside"  # 2 cases on 6.12: the selection the README's bisect uses


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A kernel tree as far as selection can tell (Makefile version, mm/khugepaged.c); make fails in it."""
    root = tmp_path / "linux"
    (root / "mm").mkdir(parents=True)
    (root / "mm" / "khugepaged.c").write_text("/* not built */\n")
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 95\nEXTRAVERSION =\n\nall modules:\n\tfalse\n")
    return root


def run_from(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as git bisect runs it: from the kernel tree, with nothing of the repo on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "workflows.bisect", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_bisect_runs_from_a_kernel_tree_not_the_repo(tree: Path) -> None:
    """The documented command, run in the kernel tree: the project must be installed, not found via cwd."""
    proc = run_from(tree, "--list", "-k", CHEAP)
    assert proc.returncode == GOOD, proc.stderr
    assert proc.stdout.splitlines() == [
        "test_ranges[6.12.95-anon-madvise-inside-one-block-madvise]",
        "test_ranges[6.12.95-anon-madvise-inside-one-block-remote]",
    ]


def test_console_script_is_installed_beside_the_interpreter(tree: Path) -> None:
    script = Path(sys.executable).parent / "collapse-bisect"
    assert script.exists(), f"no {script}: the tox env must install the project (package = editable in tox.ini)"
    proc = subprocess.run([str(script), "--list", "-k", CHEAP], cwd=tree, capture_output=True, text=True)
    assert proc.returncode == GOOD, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--jobs", "x"], id="bad-value"),
        pytest.param(["--bogus"], id="unknown-option"),
        pytest.param(["-k", "ranges and ("], id="bad-expression"),
        pytest.param(["--spec", "nope", "-k", CHEAP], id="unknown-spec"),
        pytest.param(["--tree", "/nonexistent", "-k", CHEAP], id="no-tree"),
    ],
)
def test_start_up_errors_exit_125_with_one_line(tree: Path, args: list[str]) -> None:
    proc = run_from(tree, *args)
    assert proc.returncode == SKIP, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "skip" in proc.stderr, proc.stderr


def test_a_directory_that_is_not_a_kernel_tree_is_skipped(tmp_path: Path) -> None:
    proc = run_from(tmp_path, "-k", CHEAP)
    assert proc.returncode == SKIP
    assert "not a kernel tree" in proc.stderr


def test_a_missing_module_is_skipped_not_bad(tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import workflows

    monkeypatch.delattr(workflows, "build")
    monkeypatch.setitem(sys.modules, "workflows.build", None)  # `from workflows import build` now raises ImportError
    assert bisect.main(["--tree", str(tree), "-k", CHEAP]) == SKIP
    assert "cannot import the suite" in capsys.readouterr().err


def test_a_tree_that_does_not_build_is_skipped(tree: Path) -> None:
    (tree / ".config").write_text("CONFIG_TRANSPARENT_HUGEPAGE=y\n")  # configured: straight to make, which fails
    proc = run_from(tree, "-k", CHEAP, "--jobs", "1")
    assert proc.returncode == SKIP, proc.stderr
    assert "skip (build failed)" in proc.stderr.splitlines()[-1]


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stubs for workflows.build: the steps that ran, and no kernel built."""
    steps: list[str] = []
    monkeypatch.setattr(build, "configure", lambda tree: steps.append("configure"))
    monkeypatch.setattr(build, "build", lambda tree, jobs: steps.append("build"))
    return steps


def test_a_selection_of_no_case_is_refused_before_the_build(tree: Path, no_build: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert bisect.main(["--tree", str(tree), "-k", "ranges and nosuchcase"]) == SKIP
    assert no_build == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "-k 'ranges and nosuchcase' selects no case that runs on 6.12.95" in err[0], err


def test_a_selection_of_skipped_cases_only_is_refused(tree: Path, no_build: list[str]) -> None:
    """On a kernel without THP every case of the grid skips (a configured tree's .config is read)."""
    (tree / ".config").write_text("# CONFIG_TRANSPARENT_HUGEPAGE is not set\nCONFIG_MMU=y\n")
    assert bisect.main(["--tree", str(tree), "-k", CHEAP]) == SKIP
    assert no_build == []


@pytest.mark.parametrize(
    "case_class,expected",
    [("regression", BAD), ("infrastructure", SKIP), ("documentation", GOOD), ("pass", GOOD)],
)
def test_a_run_is_judged_from_the_classes_it_stored(
    tree: Path, no_build: list[str], monkeypatch: pytest.MonkeyPatch, case_class: str, expected: int
) -> None:
    """Configure, build, run the suite, read results.json: here the suite is a stub writing one."""
    document = results(record("a", "pass", "PASS"), record("b", case_class)).to_json()
    write = f"import json, sys; open(sys.argv[1] + '/results.json', 'w').write(json.dumps({document!r}))"
    monkeypatch.setattr(build, "suite_command", lambda tree, run_dir, specs, select: [sys.executable, "-c", write, str(run_dir)])
    assert bisect.main(["--tree", str(tree), "-k", CHEAP]) == expected
    assert no_build == ["configure", "build"]  # an unconfigured tree is configured first


VERDICTS = {"pass": "PASS", "skip": "SKIP", "infrastructure": "ERROR"}


def record(case_id: str, case_class: str | None, verdict: str | None = None, **extra: str) -> dict[str, object]:
    """A results.json record; without CASE_CLASS, one written before classes were stored."""
    data: dict[str, object] = {"nodeid": case_id, "test": "ranges", "case_id": case_id, "params_id": case_id, "kernel": "k"}
    data["verdict"] = verdict or VERDICTS.get(str(case_class), "FAIL")
    if case_class:
        data["class"] = case_class
    return {**data, **extra}


def results(*cases: dict[str, object]) -> Results:
    return Results.from_json({"run": {"run_id": "r", "specs": ["upstream"]}, "kernels": [], "cases": list(cases)})


def test_bisect_answers_from_the_stored_class() -> None:
    def classed(*classes: str) -> Results:
        return results(*(record(str(i), c) for i, c in enumerate(classes)))

    assert verdict_of(classed("pass", "skip"))[0] == GOOD
    assert verdict_of(classed("pass", "documentation", "other-spec"))[0] == GOOD  # FAILs, but not of the kernel
    assert verdict_of(classed("pass", "regression", "infrastructure"))[0] == BAD
    assert verdict_of(classed("pass", "infrastructure"))[0] == SKIP
    assert verdict_of(classed("skip", "documentation"))[0] == SKIP  # nothing passed: no evidence either way
    assert verdict_of(results())[0] == SKIP


def test_bisect_reads_records_without_a_class_from_their_verdict() -> None:
    def verdicts(*names: str) -> Results:
        return results(*(record(str(i), None, v) for i, v in enumerate(names)))

    assert verdict_of(verdicts("PASS", "SKIP"))[0] == GOOD
    assert verdict_of(verdicts("PASS", "FAIL", "ERROR"))[0] == BAD
    assert verdict_of(verdicts("PASS", "ERROR"))[0] == SKIP
    assert verdict_of(verdicts("SKIP"))[0] == SKIP


def test_the_bad_answer_names_the_first_regression() -> None:
    code, reason = verdict_of(results(record("a", "pass"), record("x", "regression", message="B4: ...")))
    assert code == BAD and reason.startswith("bad: 1 pass, 1 regression; first: ranges[x] B4: ...")


def test_a_missing_vng_is_skipped_before_the_build(
    tree: Path, no_build: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """vng is needed to configure the tree and to boot it: told before anything is built."""
    from vm import vng

    monkeypatch.setattr(vng, "environment", lambda: {"PATH": str(tmp_path / "empty")})
    assert bisect.main(["--tree", str(tree), "-k", CHEAP]) == SKIP
    assert no_build == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vng (virtme-ng) not found" in err[0], err
    assert bisect.main(["--tree", str(tree), "-k", CHEAP, "--list"]) == GOOD  # listing needs no vng


def test_bisect_and_series_share_one_pre_check() -> None:
    """One function decides what both refuse before a build (no twin to drift apart)."""
    import inspect

    from workflows import series

    assert "precheck.check(" in inspect.getsource(bisect.run) and "precheck.check(" in inspect.getsource(series.validate)
    assert not hasattr(bisect, "selected")
