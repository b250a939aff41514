"""make series without a kernel: the build and the suite are stubbed behind workflows.build's interfaces
(build, configure, suite_command), everything else is real: git worktrees under a cache, b4 on a
local mbox, git am, the bisect within the series, the pair's reports, the reply and exit codes.

The stub kernel tree's "mutant" writes BROKEN into mm/khugepaged.c; the stub suite fails the
ranges[inside-one-block-madvise] case on such a tree, as suites/mutants/14 does on a real one."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.exits import UserError
from reports.kcidb import patchset_hash
from workflows import basecache, build, commands, patchset, precheck, series
from workflows.series_verdict import Blame, bisect

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "suites" / "unit" / "data" / "results-sample.json"
GIT = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]

FAKE_SUITE = r"""
import hashlib, json, sys
from pathlib import Path
tree, run_dir, select, sample = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
template = json.loads(sample.read_text())
source = (tree / "mm" / "khugepaged.c").read_text()
build_id = hashlib.sha256((tree / "arch/x86/boot/bzImage").read_bytes()).hexdigest()[:12]
name = f"6.12.95-{build_id}"
info = {**template["cases"][0]["kernel_info"], "name": name, "label": "6.12.95", "build_id": build_id,
        "origin": str(tree), "release": "6.12.95", "version": "6.12.95", "banner": "6.12.95 stub", "image": str(tree)}
inside = "ERROR" if "ERRORME" in source else "FAIL" if "BROKEN" in source else "PASS"
planned = [("inside-one-block-madvise", "B4.inside", inside), ("whole-block-madvise", "B4.whole", "PASS")]
cases = []
for params_id, rule, verdict in planned:
    if select and params_id not in select:
        continue
    failed = verdict == "FAIL"
    cases.append({**template["cases"][0], "case_id": f"6.12.95-{params_id}", "kernel": name, "kernel_info": info,
        "nodeid": f"suites/test_collapse.py::test_ranges[6.12.95-{params_id}]", "test": "ranges",
        "params_id": params_id, "params": {"range": params_id}, "rule": rule, "group": "ranges", "spec": "upstream",
        "verdict": verdict, "class": {"FAIL": "regression", "ERROR": "infrastructure"}.get(verdict, "pass"),
        "expected": {"result": "EINVAL"}, "observed": {"result": "ok" if failed else "EINVAL"},
        "message": f"{rule}: expected result=EINVAL; observed result=ok" if failed else None})
run = {**template["run"], "run_id": run_dir.name, "kernel_origins": [str(tree)], "specs": ["upstream", "documented"]}
run_dir.mkdir(parents=True, exist_ok=True)
(run_dir / "results.json").write_text(json.dumps({"run": run, "kernels": [info], "cases": cases}))
"""


class Stubs:
    """What was built and run, for the assertions."""

    def __init__(self, tmp: Path) -> None:
        self.builds: list[tuple[Path, str]] = []  # (tree, mm/khugepaged.c when built)
        self.configured: list[Path] = []
        self.suites: list[str] = []  # -k of each suite run
        self.ran: list[tuple[list[str], Path | None]] = []  # workflows.build.run (make olddefconfig)
        self.missing_tool = ""  # the pre-check's vng/QEMU check fails with this, when set
        self.script = tmp / "fake_suite.py"
        self.script.write_text(FAKE_SUITE)

    def build(self, tree: Path, jobs: int) -> Path:
        source = (tree / "mm" / "khugepaged.c").read_text()
        self.builds.append((tree, source))
        image = tree / "arch" / "x86" / "boot" / "bzImage"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_text(hashlib.sha256(source.encode()).hexdigest())
        (tree / "modules.order").write_text("")
        return image

    def configure(self, tree: Path) -> None:
        self.configured.append(tree)
        (tree / ".config").write_text("CONFIG_TRANSPARENT_HUGEPAGE=y\n")

    def tools(self) -> None:
        if self.missing_tool:
            raise UserError(self.missing_tool)

    def suite_command(self, tree: Path, run_dir: Path, specs: list[str], select: str = "") -> list[str]:
        self.suites.append(select)
        return [sys.executable, str(self.script), str(tree), str(run_dir), select, str(SAMPLE)]


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stubs:
    fake = Stubs(tmp_path)
    monkeypatch.setattr(build, "build", fake.build)
    monkeypatch.setattr(build, "configure", fake.configure)
    monkeypatch.setattr(build, "suite_command", fake.suite_command)
    monkeypatch.setattr(build, "run", lambda command, cwd=None: fake.ran.append((command, cwd)))
    monkeypatch.setattr(precheck, "tools", fake.tools)
    monkeypatch.delenv(commands.MAKE_TARGET, raising=False)
    return fake


def git(tree: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(tree), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit(tree: Path, path: str, text: str, subject: str) -> None:
    target = tree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(tree, "add", path)
    git(tree, "commit", "-q", "-m", subject)


@pytest.fixture
def linux(tmp_path: Path) -> Path:
    """A stub kernel tree: main at the base, branch `series` with harmless, mutant, harmless."""
    tree = tmp_path / "linux"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "main")
    (tree / ".gitignore").write_text("arch/x86/boot/bzImage\nmodules.order\n.config\n")
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 95\nEXTRAVERSION =\n\nall:\n")
    (tree / ".config").write_text("CONFIG_TRANSPARENT_HUGEPAGE=y\n")
    git(tree, "add", ".gitignore", "Makefile")
    commit(tree, "mm/khugepaged.c", "int madvise_collapse(void) { return -EINVAL; }\n", "base")
    git(tree, "checkout", "-q", "-b", "series")
    commit(tree, "Documentation/mm/transhuge.rst", "MADV_COLLAPSE\n", "docs: mention MADV_COLLAPSE")
    commit(tree, "mm/khugepaged.c", "int madvise_collapse(void) { return 0; } /* BROKEN */\n", "mm: return 0 inside one block")
    commit(tree, "Documentation/mm/transhuge.rst", "MADV_COLLAPSE, again\n", "docs: say it again")
    git(tree, "checkout", "-q", "main")
    return tree


def mbox_of(tree: Path, rev_range: str, out: Path) -> Path:
    """The series as a developer mails it: a cover letter and numbered, threaded patches."""
    base = git(tree, "rev-parse", rev_range.split("..")[0])
    git(tree, "format-patch", "-q", "--cover-letter", "--thread", f"--base={base}", "-o", str(out), rev_range)
    mbox = out.with_suffix(".mbox")
    mbox.write_text("".join(p.read_text() for p in sorted(out.glob("*.patch"))))
    return mbox


def validate(tree: Path, source: str, tmp: Path, name: str, *extra: str) -> tuple[int, Path]:
    out = tmp / "out" / name
    code = series.main(
        ["--tree", str(tree), "--series", source, "--out", str(out), "--cache-dir", str(tmp / "cache"), "--jobs", "1", *extra]
    )
    return code, out


def test_range_with_a_mutant_exits_1_and_names_patch_2_of_3(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    code, out = validate(linux, "main..series", tmp_path, "range")
    assert code == 1
    reply = (out / "reply.txt").read_text()
    assert "first bad patch: [PATCH 2/3] mm: return 0 inside one block" in reply
    assert "rule B4.inside" in reply and "expected result=EINVAL" in reply
    prose = reply.split("\nTo reproduce:\n")[0]  # the command after it keeps each word whole
    assert max(len(line) for line in prose.splitlines()) <= 72
    assert reply.rstrip().endswith("ARGS='-k \"(test_ranges and inside-one-block-madvise)\"'")
    assert reply.startswith("Subject: Re: [PATCH 1/3] docs: mention MADV_COLLAPSE\n")
    # One base build, the tip, then 2 = ceil(log2(3)) bisect builds; the user's tree is untouched.
    assert [tree.name for tree, _ in stubs.builds].count(linux.name) == 0
    assert len(stubs.builds) == 4
    assert stubs.suites[:2] == ["", ""] and all("inside-one-block-madvise" in k for k in stubs.suites[2:]) and len(stubs.suites) == 4
    assert git(linux, "status", "--porcelain") == "" and git(linux, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    summary = json.loads((out / "series.json").read_text())
    assert summary["regressions"] == [{"case": "ranges[inside-one-block-madvise]", "first_bad": "2/3"}]
    assert {"matrix.txt", "report.html", "kcidb.json", "reply.txt"} <= {p.name for p in out.iterdir()}
    # The pair holds both kernels' records, though their node ids (no xdist) and labels are alike.
    pair = json.loads((out / "results.json").read_text())
    assert [k["label"] for k in pair["kernels"]] == ["base", "series"] and len(pair["cases"]) == 4
    assert "Kernels:\n  base: 6.12.95 (build " in reply and reply.count("(build ") == 2
    assert len({line.split("(build ")[1][:12] for line in reply.splitlines() if "(build " in line}) == 2


def test_kcidb_checkouts_carry_the_commit_and_the_patchset_hash(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    code, out = validate(linux, "main..series", tmp_path, "range")
    assert code == 1
    kcidb = json.loads((out / "kcidb.json").read_text())
    base = git(linux, "rev-parse", "main")
    assert [c["git_commit_hash"] for c in kcidb["checkouts"]] == [base, base]
    # The base has no patch (KCIDB: "" or absent); the series' hash is KCIDB's over its 3 patches.
    assert [bool(c.get("patchset_hash")) for c in kcidb["checkouts"]] == [False, True]
    diffs = [
        git(linux, "diff-tree", "-p", "--binary", "--full-index", "--no-color", f"{c}^", c) + "\n"
        for c in git(linux, "rev-list", "--reverse", "main..series").split()
    ]
    assert kcidb["checkouts"][1]["patchset_hash"] == patchset_hash(diffs)
    schema = pytest.importorskip("kcidb_io").schema
    schema.V5_3.validate(kcidb)


def test_mbox_through_b4_gives_the_same_answer_and_replies_to_the_cover(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    if not (Path(sys.executable).parent / "b4").exists():
        pytest.skip("b4 is not installed in this environment (requirements.txt)")
    mbox = mbox_of(linux, "main..series", tmp_path / "patches")
    code, out = validate(linux, str(mbox), tmp_path, "mbox")
    assert code == 1
    reply = (out / "reply.txt").read_text()
    assert reply.startswith("Subject: Re: [PATCH 0/3] *** SUBJECT HERE ***\nIn-Reply-To: <cover.")
    assert "first bad patch: [PATCH 2/3] mm: return 0 inside one block" in reply


def test_harmless_series_exits_0_and_the_base_is_reused(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    git(linux, "checkout", "-q", "-b", "harmless", "main")
    commit(linux, "Documentation/a.rst", "a\n", "docs: a")
    commit(linux, "Documentation/b.rst", "b\n", "docs: b")
    git(linux, "checkout", "-q", "main")
    assert validate(linux, "main..harmless", tmp_path, "first")[0] == 0
    assert len(stubs.builds) == 2 and len(stubs.suites) == 2  # base, tip; no bisect
    assert validate(linux, "main..harmless", tmp_path, "again")[0] == 0
    # The cached base is reused as built: only the patched tree is built again, nothing configured.
    assert len(stubs.builds) == 3 and stubs.configured == []
    summary = json.loads((tmp_path / "out" / "again" / "series.json").read_text())
    assert summary["base_how"] == basecache.How.REUSED.value
    assert [Path(tree).name for tree, _ in stubs.builds] == ["base", "patched", "patched"]


def test_a_built_tree_at_the_base_seeds_the_cache(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    stubs.build(linux, 1)  # the user built their tree at the base
    stubs.builds.clear()
    assert validate(linux, "main..series", tmp_path, "seeded")[0] == 1
    summary = json.loads((tmp_path / "out" / "seeded" / "series.json").read_text())
    assert summary["base_how"] == basecache.How.SEEDED.value
    assert (Path(summary["base_tree"]) / "arch" / "x86" / "boot" / "bzImage").exists()


def test_a_series_that_does_not_apply_names_the_patch_and_exits_125(
    linux: Path, stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(linux, "mm/khugepaged.c", "int madvise_collapse(void) { return -EAGAIN; }\n", "mm: main moved on")
    code, _ = validate(linux, "main~1..series", tmp_path, "conflict", "--base", "main")
    assert code == 125
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m workflows.series: could not tell: [PATCH 2/3] mm: return 0 inside one block does not apply to ")
    assert err[-1].endswith("; pass --base <the commit it was made on>")
    assert stubs.suites == [] and stubs.builds == []  # checked before anything is built or run


def test_a_kconfig_change_gets_olddefconfig_before_make(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    git(linux, "checkout", "-q", "-b", "kconfig", "main")
    commit(linux, "mm/Kconfig", "config NEW_THING\n\tbool\n", "mm: a new option")
    git(linux, "checkout", "-q", "main")
    assert validate(linux, "main..kconfig", tmp_path, "kconfig")[0] == 0
    # base/ gets TREE's .config (olddefconfig once); patched/ again for the series' new option.
    assert [(command, Path(str(cwd)).name) for command, cwd in stubs.ran] == [(["make", "olddefconfig"], d) for d in ("base", "patched")]


def test_errors_on_the_series_are_could_not_tell(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    git(linux, "checkout", "-q", "-b", "flaky", "main")
    commit(linux, "mm/khugepaged.c", "int madvise_collapse(void) { return -EINVAL; } /* ERRORME */\n", "mm: a harness error")
    git(linux, "checkout", "-q", "main")
    assert validate(linux, "main..flaky", tmp_path, "errors")[0] == 125


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--series", "nonsense"], "not an mbox file, a git range A..B nor a message-id"),
        (["--series", "main..nowhere"], "nowhere is not a commit of"),
        (["--series", "main..main"], "the range holds no commit"),
        (["--series", "main..series", "--base", "v9.9"], "base v9.9 (--base) is not a commit of"),
        (["--series", ""], "pass --tree <kernel git tree> and --series <"),
        (["--series", "main..series", "-k", "ranges and ("], "not a pytest -k expression"),
        (["--series", "main..series", "-k", "nosuchcase"], "-k 'nosuchcase' selects no case that runs on 6.12.95"),
        (["--series", "main..series", "--spec", "nope"], "--spec nope: unknown"),
    ],
)
def test_bad_input_is_one_line_and_125(
    linux: Path, stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    try:
        code = series.main(["--tree", str(linux), *args, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    except SystemExit as exit_:  # argparse's own errors
        code = int(exit_.code or 0)
    assert code == 125
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err
    assert stubs.builds == []


def test_a_message_id_without_lore_fails_in_one_line(
    linux: Path, stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (Path(sys.executable).parent / "b4").exists():
        pytest.skip("b4 is not installed in this environment (requirements.txt)")
    monkeypatch.setattr(patchset, "B4_TIMEOUT_S", 30)
    assert validate(linux, "20261126000000.0-1-nobody@example.org", tmp_path, "msgid")[0] == 125
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m workflows.series: could not tell: b4 ") and "mbox file" in err[0]


def test_not_a_git_tree_is_one_line(stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "plain"
    (tree / "mm").mkdir(parents=True)
    (tree / "Makefile").write_text("all:\n")
    assert validate(tree, "HEAD~1..HEAD", tmp_path, "plain")[0] == 125
    assert "is not a git repository; `git init` and commit it" in capsys.readouterr().err


def test_bisect_costs_log2_n_observations_and_keeps_ranges_it_cannot_judge() -> None:
    key = ("upstream", "ranges", "inside", 1)
    asked: list[int] = []

    def observe(first_bad: int, unknown: set[int]) -> Callable[[int], dict[tuple[str, str, str, int], bool | None]]:
        def answer(index: int) -> dict[tuple[str, str, str, int], bool | None]:
            asked.append(index)
            return {key: None if index in unknown else index >= first_bad}

        return answer

    assert bisect(8, [key], observe(5, set())) == {key: Blame(4, 5)} and len(asked) == 3
    asked.clear()
    assert bisect(3, [key], observe(2, set())) == {key: Blame(1, 2)} and asked == [1, 2]
    asked.clear()
    assert bisect(1, [key], observe(1, set())) == {key: Blame(0, 1)} and asked == []
    blame = bisect(4, [key], observe(3, {2}))[key]
    assert not blame.exact and (blame.good, blame.bad) == (0, 4)


def test_cache_dir_is_not_the_users_tree(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    validate(linux, "main..series", tmp_path, "where")
    worktrees = git(linux, "worktree", "list", "--porcelain")
    assert str(tmp_path / "cache" / "series") in worktrees
    shutil.rmtree(tmp_path / "cache")  # a deleted cache is recreated, not an error
    assert validate(linux, "main..series", tmp_path, "again")[0] == 1


def test_a_skip_or_a_missing_case_at_a_bisect_step_is_no_evidence() -> None:
    from reports.record import Results

    def run(*classes: str) -> Results:
        verdicts = {"pass": "PASS", "skip": "SKIP", "regression": "FAIL", "infrastructure": "ERROR"}
        cases = [
            {"nodeid": str(i), "test": "ranges", "case_id": str(i), "params_id": str(i), "kernel": "k", "verdict": verdicts[c], "class": c}
            for i, c in enumerate(classes)
        ]
        return Results.from_json({"run": {"specs": ["upstream"]}, "kernels": [], "cases": cases})

    from workflows.series_verdict import still_broken

    keys = [("upstream", "ranges", str(i), 1) for i in range(5)]
    found = still_broken(run("regression", "pass", "skip", "infrastructure"), keys)
    assert [found[k] for k in keys] == [True, False, None, None, None]


def test_every_check_comes_before_any_build_as_in_collapse_bisect(
    linux: Path, stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing vng (or QEMU) is told before the base is built, as a mistyped -k or --spec is."""
    stubs.missing_tool = "vng (virtme-ng) not found on PATH"
    assert validate(linux, "main..series", tmp_path, "novng")[0] == 125
    assert stubs.builds == [] and stubs.suites == [] and stubs.configured == []
    assert capsys.readouterr().err.strip().endswith("could not tell: vng (virtme-ng) not found on PATH")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "no mail in it (empty, or not an mbox)"),
        ("garbage\n", "no mail in it (empty, or not an mbox)"),
        ("From x Mon Sep 17 00:00:00 2001\nFrom: A <a@b.c>\nSubject: [PATCH 1/1] hi\n\nno diff here\n", "1 mail(s) but no patch"),
    ],
    ids=["empty", "not-an-mbox", "no-diff"],
)
def test_an_mbox_without_patches_says_what_is_wrong_not_b4s_banner(
    linux: Path, stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, says: str
) -> None:
    mbox = tmp_path / "series.mbox"
    mbox.write_text(content)
    assert validate(linux, str(mbox), tmp_path, "bad-mbox")[0] == 125
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert "OFFLINE" not in err[0] and "pass the series as an mbox file" not in err[0]


def test_b4s_banner_is_never_its_reason() -> None:
    assert patchset.b4_reason("Running in OFFLINE mode\n", 1) == "b4 exited 1 and said no more than its banner"
    assert patchset.b4_reason("Running in OFFLINE mode\nERROR: no such thing\n", 1) == "ERROR: no such thing"


def test_a_failed_attempt_leaves_nothing_that_blocks_the_retry(linux: Path, stubs: Stubs, tmp_path: Path) -> None:
    code, out = validate(linux, "main..series", tmp_path, "retry", "-k", "nosuchcase")
    assert code == 125 and not out.exists()  # patchset.load had written out/input
    stubs.missing_tool = "vng (virtme-ng) not found on PATH"
    assert validate(linux, "main..series", tmp_path, "retry")[0] == 125 and not out.exists()
    stubs.missing_tool = ""
    assert validate(linux, "main..series", tmp_path, "retry")[0] == 1
    assert (out / "series.json").exists()
    assert validate(linux, "main..series", tmp_path, "retry")[0] == 125  # a finished run's results stay refused


def test_messages_name_the_command_that_ran(
    linux: Path, stubs: Stubs, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--base", "v9.9")
    monkeypatch.setenv(commands.MAKE_TARGET, "series")  # as the Makefile runs the tox env
    assert validate(linux, "main..series", tmp_path, "make", *args)[0] == 125
    assert capsys.readouterr().err.startswith("make series: could not tell: base v9.9 (BASE=) is not a commit of ")
    monkeypatch.delenv(commands.MAKE_TARGET)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/collapse-series"])
    assert validate(linux, "main..series", tmp_path, "script", *args)[0] == 125
    err = capsys.readouterr().err
    assert err.startswith("collapse-series: could not tell: base v9.9 (--base) is not a commit of ") and err.rstrip().endswith("--base")
