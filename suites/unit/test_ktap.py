"""KTAP v1 output (reports/ktap.py), checked with the kernel's own parser: tools/testing/kunit/kunit_parser.py
of Debian's linux-source-6.12, the tree `make kernel` builds, from workflows.build.fetch_source: a 150 MB
download and 20-40 s to unpack (1.8 GB) the first time, 0.04 s once cached under $COLLAPSE_CACHE.

Each document must parse without an error, with the counts per status that the records' classes give
and the nesting the grids give; a document with one line mutated must not pass the same check.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

import pytest

from reports import ktap
from reports.exits import UserError
from reports.record import CaseClass, CaseRecord, Results, Verdict, load
from workflows.build import DEFAULT_CACHE, fetch_source

SAMPLE = Path(__file__).with_name("data") / "results-sample.json"
SOURCE = ("linux-source-6.12", "bookworm-backports")  # the package and suite `make kernel` uses
LABELS = ["bullseye", "bookworm", "bookworm-backports", "sid"]


@dataclass
class Kunit:
    parser: ModuleType
    printer: ModuleType


@pytest.fixture(scope="session")
def kunit() -> Iterator[Kunit]:
    """kunit_parser and kunit_printer (its one import of kunit_tool) from the cached linux-source tree."""
    try:
        tree = fetch_source(DEFAULT_CACHE, *SOURCE)
    except UserError as err:
        pytest.fail(f"cannot fetch {SOURCE[0]} for kunit_parser.py: {err}")
    tools = tree / "tools" / "testing" / "kunit"
    sys.path.insert(0, str(tools))
    try:
        yield Kunit(importlib.import_module("kunit_parser"), importlib.import_module("kunit_printer"))
    finally:
        sys.path.remove(str(tools))


class KunitCounts(Protocol):
    """What the checks read of kunit_parser's TestCounts (kunit_tool is loaded from a kernel tree, untyped)."""

    passed: int
    failed: int
    skipped: int
    crashed: int
    errors: int

    def get_status(self) -> object: ...


class KunitTest(Protocol):
    """What the checks read of kunit_parser's Test."""

    name: str
    status: object  # a kunit_parser.TestStatus
    counts: KunitCounts
    subtests: list[KunitTest]


def sample() -> Results:
    return load(SAMPLE)


def kernel_of(results: Results, label: str) -> dict[str, object]:
    (kernel,) = [k for k in results.kernels if k["label"] == label]
    return kernel


def cases_of(results: Results, kernel: dict[str, object]) -> list[CaseRecord]:
    return [case for case in results.cases if case.kernel == kernel["name"]]


def parse(kunit: Kunit, document: str) -> tuple[KunitTest, str]:
    """kunit_parser's Test for the document, and what the parser printed (its errors among it)."""
    out = io.StringIO()
    printer = kunit.printer.Printer(output=out)
    test: KunitTest
    if "printer" in inspect.signature(kunit.parser.parse_run_tests).parameters:  # kunit_tool from 6.13 on
        test = kunit.parser.parse_run_tests(document.splitlines(), printer)
    else:  # 6.12 prints through a module global
        vars(kunit.parser)["stdout"] = printer
        test = kunit.parser.parse_run_tests(document.splitlines())
    return test, out.getvalue()


def status_of(kunit: Kunit, case_class: CaseClass) -> object:
    """How a class must read to kunit_parser: a harness error and a skip as skipped (never failed, never
    passed), a documentation or other-spec FAIL (XFAIL) as passed, a regression as failed."""
    status = kunit.parser.TestStatus
    return {
        CaseClass.PASS: status.SUCCESS,
        CaseClass.DOCUMENTATION: status.SUCCESS,
        CaseClass.OTHER_SPEC: status.SUCCESS,
        CaseClass.SKIP: status.SKIPPED,
        CaseClass.INFRASTRUCTURE: status.SKIPPED,
        CaseClass.REGRESSION: status.FAILURE,
        CaseClass.FLAKY: status.FAILURE,
    }[case_class]


Tree = list[tuple[str, object]]  # (name, status of a case, or the subtree of a nested test)


def expected_tree(kunit: Kunit, results: Results, cases: list[CaseRecord]) -> Tree:
    """The nesting the records give: grids of the first spec, then spec_<name> holding its grids."""

    def grids(members: list[CaseRecord]) -> Tree:
        grouped: dict[str, list[CaseRecord]] = {}
        for case in members:
            grouped.setdefault(case.test, []).append(case)
        return [(test, [(ktap.name(c.case_id), status_of(kunit, c.case_class)) for c in group]) for test, group in grouped.items()]

    tree = grids([c for c in cases if c.spec == results.primary])
    for spec in dict.fromkeys(c.spec for c in cases if c.spec != results.primary):
        tree.append((f"spec_{spec}", grids([c for c in cases if c.spec == spec])))
    return tree


def parsed_tree(kunit: Kunit, test: KunitTest) -> Tree:
    """The parsed nesting; every nested test's own result must agree with its cases (kunit's bubbling)."""
    tree: Tree = []
    for sub in test.subtests:
        if sub.subtests:
            assert sub.status == sub.counts.get_status(), f"{sub.name}: result {sub.status}, its cases give {sub.counts.get_status()}"
            tree.append((sub.name, parsed_tree(kunit, sub)))
        else:
            tree.append((sub.name, sub.status))
    return tree


def check(kunit: Kunit, results: Results, kernel: dict[str, object], document: str) -> KunitTest:
    """Parse DOCUMENT with kunit_parser and compare it with the records; AssertionError if it differs."""
    test, printed = parse(kunit, document)
    status = kunit.parser.TestStatus
    assert test.counts.errors == 0, f"kunit_parser reported errors:\n{printed}"
    assert test.status not in (status.FAILURE_TO_PARSE_TESTS, status.TEST_CRASHED, status.NO_TESTS), printed
    cases = cases_of(results, kernel)
    want = Counter(status_of(kunit, c.case_class) for c in cases)
    counts = test.counts
    got = {status.SUCCESS: counts.passed, status.FAILURE: counts.failed, status.SKIPPED: counts.skipped}
    assert counts.crashed == 0, printed
    assert got == {s: want[s] for s in got}, f"counts {got}, records give {dict(want)}"
    assert parsed_tree(kunit, test) == expected_tree(kunit, results, cases)
    return test


@pytest.mark.parametrize("label", LABELS)
def test_sample_documents_parse_with_kunit_parser(kunit: Kunit, label: str) -> None:
    results = sample()
    kernel = kernel_of(results, label)
    check(kunit, results, kernel, ktap.render(results, kernel))


def test_sample_classes_read_as_intended() -> None:
    results = sample()
    sid = ktap.render(results, kernel_of(results, "sid")).splitlines()
    regression = sid.index("  not ok 9 sid-shmem-never-never-madvise # rule A8.refused class regression")
    assert sid[regression - 1] == (
        "  # rule A8.refused class regression: expected result=EINVAL pmd_mapped=False; observed result=ok pmd_mapped=True"
    )
    assert "    ok 1 sid-anon-madvise-remote-other-uid-documented # XFAIL rule DOC.D3 class documentation" in sid
    assert "not ok 7 per_size" in sid and "ok 8 spec_documented" in sid
    assert sid[-1] == "# Totals: pass:64 fail:8 xfail:5 xpass:0 skip:0 error:0"
    bullseye = ktap.render(results, kernel_of(results, "bullseye")).splitlines()
    assert (
        "  ok 1 bullseye-anon-madvise-remote-hugepage # SKIP rule X0 class skip:"
        " MADV_COLLAPSE does not exist before 6.1 (rule X0 checks that it is rejected)"
    ) in bullseye


def judged(case: CaseRecord, case_class: CaseClass, verdict: Verdict, message: str) -> None:
    """Give a record another class, as the judge would have."""
    case.case_class, case.verdict, case.message = case_class, verdict, message


def test_a_regression_and_an_infrastructure_error_read_as_intended(kunit: Kunit) -> None:
    results = sample()
    kernel = kernel_of(results, "bookworm-backports")
    vmas = [c for c in cases_of(results, kernel) if c.test == "vmas"]
    judged(vmas[0], CaseClass.REGRESSION, Verdict.FAIL, f"{vmas[0].rule}: expected result=ENOMEM; observed result=ok")
    console = "VM did not boot # attempt 2\nKernel panic - not syncing: VFS: Unable to mount root fs\nreboot: System halted"
    judged(vmas[1], CaseClass.INFRASTRUCTURE, Verdict.ERROR, console)
    document = ktap.render(results, kernel)
    test = check(kunit, results, kernel, document)
    status = kunit.parser.TestStatus

    grid = next(sub for sub in test.subtests if sub.name == "vmas")
    assert [sub.status for sub in grid.subtests[:2]] == [status.FAILURE, status.SKIPPED]
    assert grid.status == status.FAILURE and test.status == status.FAILURE
    assert test.counts.failed == 1  # the regression alone, not the harness error

    lines = document.splitlines()
    first, second = (ktap.name(c.case_id) for c in vmas[:2])
    assert f"  # rule {vmas[0].rule} class regression: expected result=ENOMEM; observed result=ok" in lines
    assert f"  not ok 1 {first} # rule {vmas[0].rule} class regression" in lines
    infra = lines.index(f"  ok 2 {second} # SKIP rule {vmas[1].rule} class infrastructure: harness error, not a kernel verdict")
    assert lines[infra - 3 : infra] == [
        f"  # rule {vmas[1].rule} class infrastructure: harness error, not a kernel verdict: VM did not boot # attempt 2",
        "  #   Kernel panic - not syncing - VFS - Unable to mount root fs",  # kunit_parser would stop reading at the marker
        "  #   reboot - System halted",
    ]
    assert lines[-1] == "# Totals: pass:70 fail:1 xfail:1 xpass:0 skip:0 error:1"


def test_harness_errors_alone_never_read_as_a_regression_nor_a_pass(kunit: Kunit) -> None:
    results = sample()
    kernel = kernel_of(results, "bookworm-backports")
    for case in cases_of(results, kernel):  # the VM did not boot: nothing is known of the kernel
        judged(case, CaseClass.INFRASTRUCTURE, Verdict.ERROR, "qemu exited before the agent answered")
    test = check(kunit, results, kernel, ktap.render(results, kernel))
    assert test.status == kunit.parser.TestStatus.SKIPPED
    assert (test.counts.passed, test.counts.failed) == (0, 0)


def test_test_names_are_single_lines_without_hash(kunit: Kunit) -> None:
    results = sample()
    kernel = kernel_of(results, "sid")
    case = cases_of(results, kernel)[0]
    case.case_id = "- odd # id\nwith a second line"
    document = ktap.render(results, kernel)
    assert ktap.name(case.case_id) == "odd _ id with a second line"
    check(kunit, results, kernel, document)
    result = re.compile(r"^\s*(ok|not ok) [1-9][0-9]* [^#\s][^#]*?( # .*)?$")  # ktap.rst's result line
    for line in document.splitlines():
        stripped = line.strip()
        assert stripped.startswith("#") or stripped in ("KTAP version 1",) or re.match(r"^1\.\.\d+$", stripped) or result.match(line), line


def renumber(lines: list[str]) -> None:
    index = next(i for i, line in enumerate(lines) if line.startswith("  ok 2 "))
    lines[index] = lines[index].replace("ok 2 ", "ok 3 ", 1)


def flip_pass(lines: list[str]) -> None:
    index = next(i for i, line in enumerate(lines) if line.startswith("  ok 1 "))
    lines[index] = lines[index].replace("ok 1 ", "not ok 1 ", 1)


def hide_regression(lines: list[str]) -> None:
    index = next(i for i, line in enumerate(lines) if "class regression" in line and "not ok" in line)
    lines[index] = lines[index].replace("not ok", "ok", 1)


def wrong_plan(lines: list[str]) -> None:
    index = lines.index("  1..13")
    lines[index] = "  1..14"


def rename_case(lines: list[str]) -> None:
    index = next(i for i, line in enumerate(lines) if "ok 1 sid-anon-madvise-remote-hugepage" in line)
    lines[index] = lines[index].replace("remote-hugepage", "remote-hugepages")


def quote_console(lines: list[str]) -> None:
    index = next(i for i, line in enumerate(lines) if line.startswith("  # rule A8.refused"))
    lines[index] += " (console: reboot: System halted)"  # kunit_parser stops reading at that marker


@pytest.mark.parametrize("mutate", [renumber, flip_pass, hide_regression, wrong_plan, rename_case, quote_console])
def test_a_document_with_one_line_mutated_fails_the_check(kunit: Kunit, mutate: Callable[[list[str]], None]) -> None:
    results = sample()
    kernel = kernel_of(results, "sid")
    lines = ktap.render(results, kernel).splitlines()
    before = copy.copy(lines)
    mutate(lines)
    assert sum(a != b for a, b in zip(before, lines, strict=False)) >= 1
    with pytest.raises(AssertionError):
        check(kunit, results, kernel, "\n".join(lines) + "\n")


def test_write_all_writes_one_document_per_kernel(tmp_path: Path) -> None:
    results = sample()
    paths = ktap.write_all(results, tmp_path)
    assert [p.name for p in paths] == [f"ktap-{label}.txt" for label in LABELS]
    for path, kernel in zip(paths, results.kernels, strict=True):
        assert path.read_text() == ktap.render(results, kernel)
