"""Every entry point, run as the user runs it (a child process), with bad input: the documented status
(workflows/commands.py, docs/exit-codes.md), one error line on stderr, never a traceback; and the
checks that an installation runs the user's own checkout."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from reports.exits import Exit
from workflows import commands

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", commands.MAKE_TARGET)}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**clean, **(env or {})}, stdin=subprocess.DEVNULL)


def error_lines(stderr: str) -> list[str]:
    """stderr without argparse's usage (its first line and indented continuations)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("usage:", " "))]


PY = [sys.executable, "-m"]
SUITE = [*PY, "pytest", "suites/test_collapse.py", "--collect-only", "-q"]
CASES = [
    pytest.param([*PY, "reports", "--bogus"], Exit.USAGE, id="reports"),
    pytest.param([*PY, "workflows.build", "--src", "/nonexistent"], Exit.USAGE, id="build-src"),
    pytest.param([*PY, "workflows.build", "--bogus"], Exit.USAGE, id="build"),
    pytest.param([*PY, "workflows.build", "--cache-dir", "/nonexistent/dir"], Exit.USAGE, id="build-cache-dir"),
    pytest.param([*PY, "workflows.mutants", "--bogus"], Exit.USAGE, id="mutants"),
    pytest.param([*PY, "workflows.mutants", "--jobs", "0"], Exit.USAGE, id="mutants-jobs"),
    pytest.param([*PY, "workflows.bench", "--bogus"], Exit.USAGE, id="bench"),
    pytest.param([*PY, "workflows.commands", "--bogus"], Exit.USAGE, id="commands"),
    pytest.param([*PY, "workflows.bisect", "--bogus"], commands.SKIP, id="bisect"),
    pytest.param([str(BIN / "collapse-bisect"), "--bogus"], commands.SKIP, id="collapse-bisect"),
    pytest.param([*PY, "workflows.series", "--bogus"], commands.SKIP, id="series"),
    pytest.param([str(BIN / "collapse-series"), "--tree", "/nonexistent", "--series", "x"], commands.SKIP, id="collapse-series"),
    pytest.param([*SUITE, "--kernel", "nonsense"], Exit.USAGE, id="pytest-kernel"),
    pytest.param([*SUITE, "--guest-cpus", "0"], Exit.USAGE, id="pytest-guest-cpus"),
    pytest.param([*SUITE, "--case-timeout", "-1"], Exit.USAGE, id="pytest-case-timeout"),
    pytest.param([*SUITE, "--boot-timeout", "0"], Exit.USAGE, id="pytest-boot-timeout"),
    pytest.param([*SUITE, "--cache-dir", "/nonexistent/dir"], Exit.USAGE, id="pytest-cache-dir"),
    pytest.param([*SUITE, "--rule", "Z9"], Exit.USAGE, id="pytest-rule"),
]


@pytest.mark.parametrize(("args", "status"), CASES)
def test_bad_input_is_the_documented_status_in_one_line(args: list[str], status: int, tmp_path: Path) -> None:
    if not Path(args[0]).exists():
        pytest.skip(f"{args[0]} is not installed (pip install -e .)")
    proc = run(args)
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(error_lines(proc.stderr)) == 1, proc.stderr
    assert not Path("/nonexistent").exists()


def test_each_status_tested_is_in_the_table() -> None:
    for param in CASES:
        args, status = param.values
        assert isinstance(args, list)
        words = [Path(str(a)).name for a in args]
        name = "pytest suites/test_collapse.py" if "pytest" in words else next(w for w in words if w not in ("python", "-m", "python3"))
        if name.startswith("python"):
            name = words[words.index("-m") + 1]
        assert status in {s.code for s in commands.command(name).exits}, name


def modules_with_main() -> set[str]:
    found = set()
    for path in [*(REPO / "workflows").glob("*.py"), REPO / "reports" / "__main__.py"]:
        if 'if __name__ == "__main__":' in path.read_text():
            found.add("reports" if path.name == "__main__.py" else f"workflows.{path.stem}")
    return found


def test_every_entry_point_is_in_the_table_and_ends_in_the_one_wrapper() -> None:
    assert modules_with_main() <= {c.module for c in COMMANDS if c.module}
    for module in modules_with_main() - {"reports"}:  # reports/ is another package's: its own exits, tested above
        tail = (REPO / "workflows" / f"{module.split('.')[1]}.py").read_text().split('if __name__ == "__main__":')[1]
        assert "entry(" in tail or "cli()" in tail, module


COMMANDS = commands.COMMANDS


def test_console_scripts_go_through_the_wrapper() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {c.script for c in COMMANDS if c.script}
    for target in scripts.values():
        module, function = target.split(":")
        source = (REPO / Path(*module.split("."))).with_suffix(".py").read_text()
        body = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == function)
        assert "commands.entry" in ast.unparse(body), target


def test_the_exit_table_in_docs_is_current() -> None:
    assert commands.DOCS.exists(), "run: python -m workflows.commands --write-docs"
    assert commands.DOCS.read_text() == commands.markdown(), "run: python -m workflows.commands --write-docs"


def test_every_exit_code_has_its_meaning_in_the_table() -> None:
    text = commands.markdown()
    assert set(commands.MEANING) == set(Exit)
    assert all(f"| {code.value} | {code.name} |" in text for code in Exit)
    assert "| 125 |" in text and "make itself exits 0" in text


def test_a_command_names_itself_as_the_user_ran_it(monkeypatch: pytest.MonkeyPatch) -> None:
    series = commands.command("collapse-series")
    monkeypatch.setenv(commands.MAKE_TARGET, "series")
    assert commands.invoked(series) == "make series" and commands.option(series, "BASE") == "BASE="
    monkeypatch.delenv(commands.MAKE_TARGET)
    monkeypatch.setattr(sys, "argv", ["/x/bin/collapse-series"])
    assert commands.invoked(series) == "collapse-series" and commands.option(series, "BASE") == "--base "
    monkeypatch.setattr(sys, "argv", ["/x/workflows/series.py"])
    assert commands.invoked(series) == "python -m workflows.series"


# ------------------------------------------------------------------ which code runs


def fake_checkout(root: Path) -> Path:
    for name in ("tox.ini", "conftest.py", "workflows/commands.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


def test_a_plain_pip_install_is_refused_in_one_line(tmp_path: Path) -> None:
    """`pip install .` copies the packages alone: the commands say so, and how to install, at once."""
    site = tmp_path / "site-packages"
    for package in ("reports", "workflows", "vm", "suites", "fixtures"):
        shutil.copytree(REPO / package, site / package, ignore=shutil.ignore_patterns("__pycache__", "unit", "harness"))
    elsewhere = tmp_path / "linux"
    elsewhere.mkdir()
    for module, status in (("workflows.bisect", commands.SKIP), ("workflows.series", commands.SKIP), ("workflows.build", Exit.USAGE)):
        proc = run([sys.executable, "-m", module, "--help"], cwd=elsewhere, env={"PYTHONPATH": str(site)})
        assert proc.returncode == status, proc.stderr
        assert proc.stderr.count("\n") == 1 and "installed without its checkout" in proc.stderr and "pip install -e" in proc.stderr


def test_a_copied_clone_says_it_runs_the_original(tmp_path: Path) -> None:
    """Inside another checkout, the editable install would run (and write into) this one."""
    clone = fake_checkout(tmp_path / "copy")
    (clone / "sub").mkdir()
    proc = run([sys.executable, "-m", "workflows.build", "--help"], cwd=clone / "sub")
    assert proc.returncode == Exit.USAGE
    assert proc.stderr.count("\n") == 1 and f"this is the checkout {clone}, but the installed code is {REPO}'s" in proc.stderr
    assert commands.installation_problem(REPO, REPO / "suites") is None
    assert commands.installation_problem(REPO, tmp_path) is None  # a kernel tree: not a checkout at all


# ------------------------------------------------------------------ make


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return run(["make", "--no-print-directory", *args])


@pytest.fixture
def has_make() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")


@pytest.mark.usefixtures("has_make")
def test_plain_make_prints_help_and_starts_nothing() -> None:
    proc = make()
    assert proc.returncode == 0
    assert "make matrix" in proc.stdout and "make check" in proc.stdout and "KERNELS=" in proc.stdout and "tox" in proc.stdout
    assert make("help").stdout == proc.stdout
    assert "bootstrap" not in make("-n").stdout and "tox -e" not in make("-n").stdout


@pytest.mark.usefixtures("has_make")
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nosuch"], "no target 'nosuch'; make help lists them"),
        (["matrix", "KERNEL=debian:sid"], "KERNEL= is no variable of this Makefile"),
        (["check", "KERNELS=debian:sid"], "make check does not read KERNELS=; it reads ARGS"),
        (["matrix", "KERNELS=bookworm"], "KERNELS: bookworm is neither debian:SUITE nor an existing"),
    ],
)
def test_make_refuses_what_it_would_silently_ignore(args: list[str], says: str) -> None:
    proc = make(*([] if args == ["nosuch"] else ["-n"]), *args)  # -n: were it accepted, nothing would run either
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "tox -e" not in proc.stdout


@pytest.mark.usefixtures("has_make")
def test_make_keeps_matrix_and_check_as_they_were() -> None:
    matrix = make("-n", "matrix", "KERNELS=debian:sid").stdout.strip()
    assert matrix.endswith("tox -e matrix -- --kernel debian:sid -n auto --dist loadgroup")
    assert make("-n", "check").stdout.strip().endswith("tox -e check -- \n.venv-tox/bin/tox -e arm64")
