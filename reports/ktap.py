"""KTAP v1, one document per kernel, for CI systems that read kselftest and KUnit output (KernelCI,
LKFT, NIPA). The format is Documentation/dev-tools/ktap.rst; suites/unit/test_ktap.py checks every
document with the kernel's own parser, tools/testing/kunit/kunit_parser.py.

Layout: a subtest per grid (availability, process_madvise, ...) with one result line per case, in
the order of results.json; the cases of each further spec checked beside the first (documented,
say) in a subtest of their own, spec_<name>, nested by grid the same way. A line that is not a pass
carries its rule id and class; a failure's expected and observed values, or the harness error, go
in diagnostic lines just before its result line. The document ends with kselftest's "# Totals" line.

How a class reads (decided by the class stored in the record, never worked out again here):

    pass            ok N case
    skip            ok N case # SKIP rule R class skip: <reason>
    regression      not ok N case # rule R class regression
    infrastructure  ok N case # SKIP rule R class infrastructure: harness error, not a kernel verdict
    documentation   ok N case # XFAIL rule R class documentation
    other-spec      ok N case # XFAIL rule R class other-spec
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from reports.record import CaseClass, CaseRecord, Results, platform_text
from reports.results import write_per_kernel

VERSION_LINE = "KTAP version 1"
INDENT = "  "  # one nesting level (ktap.rst)
MAX_MESSAGE_LINES = 20  # of a case's message in diagnostic lines; results.json keeps all of it

# The result and directive of each class, chosen by what the parsers CI systems run do with them:
# kunit_parser.py (KUnit, NIPA) changes a status only for "# SKIP" (any other directive keeps the
# ok/not ok), and LKFT's kselftest parse-output.py reads every "not ok" as fail (even "not ok # SKIP"),
# "ok ... # SKIP" as skip and any other "ok" as pass.
# - infrastructure: "ok # SKIP". ktap.rst's "not ok # ERROR" would be the literal choice, but both
#   parsers above count it as failed, so a VM that did not boot would read as a kernel regression;
#   "not ok # SKIP" is a skip to kunit_parser but a fail to LKFT. "ok # SKIP" is a skip to both: never
#   a regression and never a pass. The diagnostic lines and "error:" in the totals say it was the
#   harness, and the suite's exit status (3) keeps the run from passing silently.
# - documentation, other-spec: "ok # XFAIL". XFAIL is a KTAP v1 directive ("expected to fail"), the
#   one kselftest prints from ksft_test_result_xfail(), and the pytest run marks these xfail too.
#   kunit_parser and LKFT read it as a pass: not a regression, the rule and class stay on the line.
#   ("not ok # XFAIL" would read as failed; "# TODO" is "not recognized" in KTAP.)
# - flaky: only ever a combination of repeats, never one record's class; read as failed if it occurs.
RESULTS: dict[CaseClass, tuple[str, str]] = {
    CaseClass.PASS: ("ok", ""),
    CaseClass.SKIP: ("ok", "SKIP"),
    CaseClass.REGRESSION: ("not ok", ""),
    CaseClass.FLAKY: ("not ok", ""),
    CaseClass.INFRASTRUCTURE: ("ok", "SKIP"),
    CaseClass.DOCUMENTATION: ("ok", "XFAIL"),
    CaseClass.OTHER_SPEC: ("ok", "XFAIL"),
}
HARNESS_ERROR = "harness error, not a kernel verdict"

# kunit_parser.py stops reading at any line that contains one of its end-of-boot markers (KTAP_END),
# so text quoting a console (an infrastructure error, say) must not carry them verbatim.
STOP_MARKERS = {
    "List of all partitions:": "List of all partitions -",
    "Kernel panic - not syncing: VFS:": "Kernel panic - not syncing - VFS -",
    "reboot: System halted": "reboot - System halted",
}


def text(value: object) -> str:
    """One line of free text, safe anywhere in a document."""
    line = " ".join(str(value).split())
    for marker, harmless in STOP_MARKERS.items():
        line = line.replace(marker, harmless)
    return line


def name(value: object) -> str:
    """A valid KTAP test name: one line, no '#' (it starts the directive), no leading "- " (TAP's
    optional separator, which parsers strip)."""
    line = text(value).replace("#", "_")
    while line.startswith("- "):
        line = line[2:]
    return line or "unnamed"


def directive_text(value: object) -> str:
    """Diagnostic data on a result line: '#' replaced, so that no " # SKIP" inside can be mistaken
    for the directive (kunit_parser takes the last one)."""
    return text(value).replace("#", "_")


def message_lines(case: CaseRecord) -> list[str]:
    """The case's message without the "RULE: " prefix the judge puts on a failure's message."""
    lines = [line for line in (case.message or "").splitlines() if line.strip()]
    prefix = f"{case.rule}: "
    if lines and case.rule and lines[0].startswith(prefix):
        lines[0] = lines[0][len(prefix) :]
    return lines


def case_lines(number: int, case: CaseRecord) -> list[str]:
    """A case's diagnostic lines (for a non-pass that is not a plain skip) and its result line."""
    result, directive = RESULTS[case.case_class]
    label = name(case.case_id)
    if case.case_class is CaseClass.PASS:
        return [f"{result} {number} {label}"]
    tag = f"rule {directive_text(case.rule or 'none')} class {case.case_class}"
    message = message_lines(case)
    diagnostics: list[str] = []
    detail = ""
    if case.case_class is CaseClass.SKIP:
        detail = f": {directive_text(message[0])}" if message else ""  # a skip's reason, as kselftest prints it
    else:
        if case.case_class is CaseClass.INFRASTRUCTURE:
            detail = f": {HARNESS_ERROR}"
            message = [HARNESS_ERROR + (f": {message[0]}" if message else ""), *message[1:]]
        shown = message[:MAX_MESSAGE_LINES] or ["(no message)"]
        diagnostics = [f"# {tag}: {text(shown[0])}", *(f"#   {text(line)}" for line in shown[1:])]
        if len(message) > MAX_MESSAGE_LINES:
            diagnostics.append(f"#   ... {len(message) - MAX_MESSAGE_LINES} more lines in results.json")
    return [*diagnostics, f"{result} {number} {label} # {f'{directive} ' if directive else ''}{tag}{detail}"]


def totals(cases: list[CaseRecord]) -> str:
    """kselftest's counts (ksft_print_cnts), with a harness error as "error", never as "fail"."""
    classes = Counter(case.case_class for case in cases)
    counts = {
        "pass": classes[CaseClass.PASS],
        "fail": classes[CaseClass.REGRESSION] + classes[CaseClass.FLAKY],
        "xfail": classes[CaseClass.DOCUMENTATION] + classes[CaseClass.OTHER_SPEC],
        "xpass": 0,
        "skip": classes[CaseClass.SKIP],
        "error": classes[CaseClass.INFRASTRUCTURE],
    }
    return " ".join(f"{key}:{value}" for key, value in counts.items())


def parent_result(number: int, title: str, cases: list[CaseRecord]) -> str:
    """A subtest's own result: not ok when any case is, a skip when every case is, else ok."""
    results = [RESULTS[case.case_class] for case in cases]
    if any(result == "not ok" for result, _ in results):
        return f"not ok {number} {title}"
    if all(directive == "SKIP" for _, directive in results):
        return f"ok {number} {title} # SKIP no case gave a verdict"
    return f"ok {number} {title}"


Child = tuple[str, list[str], list[CaseRecord]]  # a nested test: its name, its lines, its cases


def nested(title: str, diagnostics: list[str], planned: int, body: list[str], cases: list[CaseRecord]) -> list[str]:
    """A nested test's lines, indented one level: header, plan, body and its counts (as kunit prints
    them). Its result line, at the parent's level, comes from `closed`."""
    lines = [VERSION_LINE, f"# Subtest: {title}", *diagnostics, f"1..{planned}", *body, f"# {title}: {totals(cases)}"]
    return [INDENT + line for line in lines]


def closed(children: list[Child]) -> list[str]:
    """Children numbered from 1, each followed by its result line."""
    lines: list[str] = []
    for number, (title, body, cases) in enumerate(children, 1):
        lines += [*body, parent_result(number, title, cases)]
    return lines


def grid_tests(cases: list[CaseRecord], order: list[str]) -> list[Child]:
    """One nested test per grid (test name), grids in run order, cases in record order."""
    grouped: dict[str, list[CaseRecord]] = {test: [] for test in order}
    for case in cases:
        grouped.setdefault(case.test, []).append(case)
    tests = []
    for test, members in grouped.items():
        if members:
            title = name(test)
            body = [line for number, case in enumerate(members, 1) for line in case_lines(number, case)]
            tests.append((title, nested(title, [], len(members), body, members), members))
    return tests


def render(results: Results, kernel: dict[str, object]) -> str:
    """The KTAP v1 document of one kernel's cases."""
    cases = [case for case in results.cases if case.kernel == kernel["name"]]
    order = list(dict.fromkeys(case.test for case in results.cases))  # the same grid order for every kernel
    primary = results.primary
    specs = list(dict.fromkeys([*results.specs[1:], *sorted({case.spec for case in cases})]))  # a spec the header omits too
    children = grid_tests([case for case in cases if case.spec == primary], order)
    for spec in specs:
        spec_cases = [case for case in cases if case.spec == spec]
        if spec == primary or not spec_cases:
            continue
        grids = grid_tests(spec_cases, order)
        title = name(f"spec_{spec}")
        note = f"# spec {text(spec)}: checked beside {text(primary)}; a FAIL of it is XFAIL (documentation or other-spec), not a regression"
        children.append((title, nested(title, [note], len(grids), closed(grids), spec_cases), spec_cases))

    lines = [
        VERSION_LINE,
        f"# {text(results.tool)}: madvise(MADV_COLLAPSE), rule book {text(results.rule_book)}, run {text(results.run.get('run_id', '?'))}",
        f"# kernel {text(kernel.get('label'))}: {text(kernel.get('release'))} (version {text(kernel.get('version'))},"
        f" build {text(kernel.get('build_id'))}, {text(kernel.get('origin'))}, {text(platform_text(kernel))})",
        f"# spec {text(primary)}: fully checked; a FAIL of it is a regression (not ok)",
        "# classes: regression = not ok; infrastructure = ok # SKIP (harness error, not a kernel verdict);"
        " documentation, other-spec = ok # XFAIL; skip = ok # SKIP",
        *(f"# incomplete: {text(gap)}" for gap in results.completeness.gaps()),
        f"1..{len(children)}",
        *closed(children),
        f"# Totals: {totals(cases)}",
    ]
    return "\n".join(lines) + "\n"


def write_all(results: Results, run_dir: Path) -> list[Path]:
    return write_per_kernel(results, run_dir, "ktap-{label}.txt", render)
