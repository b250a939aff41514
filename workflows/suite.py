"""The one way to run the suite in a child process (workflows.mutants, workflows.bisect, workflows.series, the bench and
the harness's own tests): the pytest command line, built from typed arguments."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "suites/test_collapse.py"


def command(
    kernels: Sequence[str | Path] = (),
    run_dir: Path | None = None,
    specs: Sequence[str] = (),
    select: str = "",
    *,
    tests: Sequence[str] = (SUITE,),
    workers: str | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """`python -m pytest` over TESTS, run from REPO (cwd): KERNELS and SPECS repeatable, no xdist
    unless WORKERS is given (then one group per kernel), OPTIONS passed as they are."""
    words = [sys.executable, "-m", "pytest", *tests]
    words += [arg for kernel in kernels for arg in ("--kernel", str(kernel))]
    words += [arg for spec in specs for arg in ("--spec", spec)]
    words += ["-n", workers, "--dist", "loadgroup"] if workers else ["-p", "no:xdist"]
    words += ["--run-dir", str(run_dir)] if run_dir is not None else []
    words += [*options, *(["-k", select] if select else [])]
    return words
