"""The speed benchmark (make bench): the real matrix, timed against the boot-time floor.

It runs the suite as the user would (pytest, xdist, one VM per kernel), samples the memory of the
whole process tree, then reruns a few cases with one VM per case for comparison. It prints figures;
it asserts nothing. Per grid it also prints where the guest's time goes: the median guest time per
case and the phases that take most of it (the observation's `phases`, timed in the guest by
fixtures/workload.py). --grid benches one grid; --profile RUN_DIR prints that table for a run
already made, running nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from reports.exits import Exit, Parser, UserError
from reports.jsonvalues import number
from reports.record import CaseRecord, Results, ResultsError, Verdict, load
from suites import rulebook
from workflows import commands, suite

REPO = Path(__file__).resolve().parent.parent
COMMAND = commands.command("workflows.bench")


def tree_rss(root: int) -> int:
    """Resident memory of ROOT and all its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
        except (OSError, ValueError):
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def run_pytest(command: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak tree RSS in bytes, exit status) of one suite run (workflows.suite.command)."""
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    status = proc.wait()
    sampler.join()
    return time.monotonic() - started, peak, status


def workload_overhead_s(case: CaseRecord) -> float | None:
    """Harness time of a case: its pytest duration less the workload's own time in the guest."""
    workload_s = (case.raw or {}).get("workload_s")
    return case.duration_s - float(workload_s) if isinstance(workload_s, int | float) else None


@dataclass
class KernelFigures:
    """One kernel's line of the benchmark (bench.txt, bench.json's rows)."""

    kernel: str
    boot_s: float
    cases: int
    in_guest_s: float
    median_guest_s: float  # a case's guest time, median
    wall_s: float
    overhead_ms: float
    floor_ratio: float
    workers: set[str]


def kernel_figures(document: Results) -> list[KernelFigures]:
    rows = []
    for kernel in document.kernels:
        ran = [c for c in document.cases if c.kernel == kernel["name"] and c.verdict is not Verdict.SKIP]
        if not ran:
            continue
        boot = number(kernel, "boot_s")
        in_guest = sum(c.guest_s or 0.0 for c in ran)
        median_guest = statistics.median(c.guest_s or 0.0 for c in ran)
        wall = max(c.stop or 0.0 for c in ran) - min(c.start or 0.0 for c in ran) + boot
        overheads = [o for o in map(workload_overhead_s, ran) if o is not None]
        rows.append(
            KernelFigures(
                kernel=str(kernel["label"]),
                boot_s=boot,
                cases=len(ran),
                in_guest_s=in_guest,
                median_guest_s=median_guest,
                wall_s=wall,
                overhead_ms=1000 * statistics.median(overheads) if overheads else float("nan"),
                floor_ratio=wall / (boot + in_guest),
                workers={c.worker for c in ran},
            )
        )
    return rows


def kernel_lines(rows: list[KernelFigures]) -> list[str]:
    """The per-kernel table: boot, cases, in-guest time, wall, harness overhead, floor ratio."""
    header = f"{'kernel':<22}{'boot s':>8}{'cases':>7}{'in-guest s':>12}{'median s':>10}{'wall s':>9}{'overhead ms':>13}{'floor ratio':>13}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.kernel:<22}{r.boot_s:>8.1f}{r.cases:>7}{r.in_guest_s:>12.1f}{r.median_guest_s:>10.2f}{r.wall_s:>9.1f}"
            f"{r.overhead_ms:>13.1f}{r.floor_ratio:>13.2f}"
        )
    return [*lines, "-" * len(header)]


OTHER = "other"  # guest time no phase accounts for: the agent's parsing of the case, the JSON of the answer
TOP_PHASES = 5


@dataclass(frozen=True)
class PhaseFigure:
    """One phase of a grid: its median over the cases that went through it, and its share of the
    grid's whole guest time."""

    phase: str
    median_ms: float
    share: float


@dataclass(frozen=True)
class GridProfile:
    """Where one grid's guest time goes on one kernel (a line of the per-grid table)."""

    kernel: str
    grid: str
    cases: int
    median_guest_ms: float
    phases: tuple[PhaseFigure, ...]  # every phase, largest share first


def observed_once(cases: Iterable[CaseRecord]) -> list[CaseRecord]:
    """The cases that ran in the guest, each observation once: a further spec's case reuses the
    first spec's observation (suites/test_collapse.py) and would count its guest time twice."""
    seen: set[tuple[str, str, str, int]] = set()
    kept = []
    for case in cases:
        key = (case.kernel, case.test, case.params_id, case.repeat)
        if case.guest_s is not None and case.verdict is not Verdict.SKIP and key not in seen:
            seen.add(key)
            kept.append(case)
    return kept


def phases_of(case: CaseRecord) -> dict[str, float]:
    """A case's guest seconds per phase, with OTHER for what no phase accounts for; {} for a case
    recorded before phases were timed."""
    phases = (case.raw or {}).get("phases")
    if not isinstance(phases, dict):
        return {}
    spent = {str(name): float(seconds) for name, seconds in phases.items() if isinstance(seconds, int | float)}
    spent[OTHER] = max(0.0, (case.guest_s or 0.0) - sum(spent.values()))
    return spent


def grid_profiles(cases: Iterable[CaseRecord]) -> list[GridProfile]:
    """One profile per (kernel, grid), in the order the cases ran."""
    groups: dict[tuple[str, str], list[CaseRecord]] = defaultdict(list)
    for case in observed_once(cases):
        groups[(str(case.kernel_info.get("label", case.kernel)), case.test)].append(case)
    return [_profile(kernel, grid, ran) for (kernel, grid), ran in groups.items()]


def _profile(kernel: str, grid: str, ran: list[CaseRecord]) -> GridProfile:
    total = sum(case.guest_s or 0.0 for case in ran)
    per_phase: dict[str, list[float]] = defaultdict(list)
    for case in ran:
        for phase, seconds in phases_of(case).items():
            per_phase[phase].append(seconds)
    figures = [
        PhaseFigure(phase, 1000 * statistics.median(spent), sum(spent) / total if total else 0.0) for phase, spent in per_phase.items()
    ]
    figures.sort(key=lambda figure: (-figure.share, figure.phase))
    return GridProfile(kernel, grid, len(ran), 1000 * statistics.median(case.guest_s or 0.0 for case in ran), tuple(figures))


def profile_lines(profiles: Iterable[GridProfile], top: int = TOP_PHASES) -> list[str]:
    """The per-grid table: median guest ms per case, then the TOP phases (median ms, share)."""
    header = f"{'kernel':<20}{'grid':<18}{'cases':>6}{'guest ms':>10}  top phases: median ms (share of the grid's guest time)"
    lines = [header, "-" * len(header)]
    for p in profiles:
        shown = ", ".join(f"{f.phase} {f.median_ms:.1f} ({f.share:.0%})" for f in p.phases[:top]) or "(no phases recorded)"
        lines.append(f"{p.kernel:<20}{p.grid:<18}{p.cases:>6}{p.median_guest_ms:>10.1f}  {shown}")
    return lines


def grid_selection(grids: list[str]) -> str:
    """The -k expression selecting GRIDS (test names of the rule book); an unknown one is a UserError."""
    known = rulebook.load().tests
    unknown = [grid for grid in grids if grid not in known]
    if unknown:
        raise UserError(f"--grid {unknown[0]}: no such grid; the rule book's grids are {', '.join(known)}")
    return " or ".join(f"test_{grid}" for grid in grids)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=commands.invoked(COMMAND), description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--kernel", action="append", default=[], help="kernels to run (default: the suite's default set)")
    parser.add_argument("-n", "--workers", default="auto", help="xdist workers")
    parser.add_argument("--subset", type=_count, default=3, help="cases rerun with one VM per case (0: none)")
    parser.add_argument("--grid", action="append", default=[], help="bench only this grid (repeatable; e.g. eligibility)")
    parser.add_argument("--profile", type=Path, metavar="RUN_DIR", help="print this run's per-kernel and per-grid tables and exit")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "out" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args(argv)
    try:
        if args.profile is not None:
            run = load(args.profile)
            print("\n".join([*kernel_lines(kernel_figures(run)), "", *profile_lines(grid_profiles(run.cases))]))
            return Exit.CLEAN
        select = grid_selection(args.grid) if args.grid else ""
    except (ResultsError, UserError) as err:
        print(f"{commands.invoked(COMMAND)}: error: {err}", file=sys.stderr)
        return Exit.USAGE
    return bench(args, select)


def _count(text: str) -> int:
    """--subset: a whole number >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def bench(args: argparse.Namespace, select: str) -> int:
    shared_dir, per_case_dir = args.out / "matrix", args.out / "vm-per-case"

    # One spec: cases of a further spec reuse observations, which would read as zero-cost cases.
    wall, peak, status = run_pytest(suite.command(args.kernel, shared_dir, ["upstream"], select, workers=args.workers, options=["-q"]))
    if not (shared_dir / "results.json").exists():
        print(f"{commands.invoked(COMMAND)}: error: the matrix run wrote no results (pytest exit {status})", file=sys.stderr)
        # pytest's bad input (its line is above) and Ctrl-C keep their meaning; anything else: no figures.
        return Exit(status) if status in (Exit.USAGE, Exit.INTERRUPTED) else Exit.INFRASTRUCTURE
    document = load(shared_dir)
    rows = kernel_figures(document)
    if not rows:
        print(f"{commands.invoked(COMMAND)}: error: no case ran (all skipped or deselected)", file=sys.stderr)
        return Exit.NO_CASES
    profiles = grid_profiles(document.cases)
    workers = len(set[str]().union(*(r.workers for r in rows))) or 1
    floor = sum(r.boot_s + r.in_guest_s for r in rows) / workers

    # The first cases of the kernel with the most cases, each in a freshly booted VM.
    busiest = max(rows, key=lambda r: r.cases)
    first = busiest.kernel
    origin = str(next(k["origin"] for k in document.kernels if k["label"] == first))
    subset = [  # -k matches "eligibility[ID]" inside "test_eligibility[ID]" and nothing else
        f"{c.test}[{c.case_id}]" for c in document.cases if c.kernel_info["label"] == first and c.verdict is not Verdict.SKIP
    ][: args.subset]
    shared_per_case = busiest.wall_s / busiest.cases
    per_case_line = "one VM per case: not run (--subset 0)"
    if subset:
        per_case_wall, _, _ = run_pytest(
            suite.command([origin], per_case_dir, ["upstream"], " or ".join(subset), options=["--vm-per-case", "-q"])
        )
        per_case_line = (
            f"one VM per case, {len(subset)} cases on {first}: {per_case_wall / len(subset):.1f} s/case vs {shared_per_case:.2f} s/case "
            f"shared: {(per_case_wall / len(subset)) / shared_per_case:.0f}x (target >= 20)"
        )

    lines = kernel_lines(rows)
    all_overheads = [o for o in map(workload_overhead_s, document.cases) if o is not None]
    lines += [
        f"run: {len(document.cases)} cases on {len(rows)} kernels, {workers} workers, accel {document.kernels[0].get('accel')}",
        f"wall {wall:.1f} s; floor sum(boot + in-guest) / workers = {floor:.1f} s; ratio {wall / floor:.2f} (target <= 1.3)",
        f"harness overhead per case: median {1000 * statistics.median(all_overheads):.1f} ms (target <= 30)",
        per_case_line,
        f"peak host memory of the run's process tree: {peak / (1 << 30):.2f} GiB",
        f"machine: {os.cpu_count()} cores, {_mem_total_gib():.0f} GiB; results: {args.out}",
        "",
        *profile_lines(profiles),
    ]
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.txt").write_text(text)
    figures = {"rows": [asdict(r) for r in rows], "grids": [asdict(p) for p in profiles], "wall": wall, "floor": floor, "peak": peak}
    (args.out / "bench.json").write_text(json.dumps(figures, default=sorted, indent=1))
    print(text, end="")
    return Exit.CLEAN


def _mem_total_gib() -> float:
    line = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal:"))
    return int(line.split()[1]) / (1 << 20)


if __name__ == "__main__":
    commands.entry(COMMAND.name, main)
