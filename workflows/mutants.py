"""Mutation testing: apply each patch of suites/mutants/ to a built kernel tree, rebuild, run the
suite on it, and report which rules killed the mutant (a case that passes on the unpatched tree
and fails, or errors, on the mutant).

Each patch names, on a `Grids:` line under its summary, the grids of the code it breaks; a mutant
runs the cases of those grids, and the baseline the cases of every grid named. `--select` runs one
-k expression for all instead (`--select ""`: every case).

    python -m workflows.mutants                      # every mutant, on workflows.build's linux-source-6.12 tree
    python -m workflows.mutants --only 02-proposal-never-refused --tree ~/linux
    python -m workflows.mutants --arch arm64 --only 01-nohugepage-ignored   # on workflows.build --arch arm64's tree
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reports.exits import Exit, Parser, UserError
from reports.record import CaseClass, Results, ResultsError, load
from suites import rulebook
from vm.cache import cache_option
from workflows import build, commands

REPO = Path(__file__).resolve().parent.parent
MUTANTS = REPO / "suites" / "mutants"
SURVIVORS = MUTANTS / "survivors.toml"
APPLIED = ".collapse-conformance-mutant"  # in the tree: the patch currently applied, if any
SPECS = ("upstream", "proposal")
COMMAND = commands.command("workflows.mutants")


@dataclass
class Outcome:
    name: str
    summary: str  # the patch's first line
    built: bool = True
    build_s: float = 0.0
    run_s: float = 0.0
    killed_by: dict[str, list[str]] = field(default_factory=dict)  # rule -> case ids
    proposal_failures: list[str] = field(default_factory=list)  # rules of the proposal spec that failed
    reason: str = ""  # a survivor's explanation, from survivors.toml
    explained: bool = False  # a survivor with its reason in survivors.toml
    untested: bool = False  # built, but no case of its grids ran (each SKIPped on this tree): neither killed nor survived

    @property
    def killed(self) -> bool:
        return bool(self.killed_by)


def grids_of(patch_file: Path) -> list[str]:
    """The grids a patch names on its `Grids:` line; UserError naming the fix if it names none or an unknown one."""
    line = next((x for x in patch_file.read_text().splitlines()[:5] if x.startswith("Grids:")), "")
    grids = line.removeprefix("Grids:").split()
    known = rulebook.load().tests
    unknown = [g for g in grids if g not in known]
    if not grids or unknown:
        raise UserError(f"{patch_file.name}: name the grids it breaks on a 'Grids:' line under the summary, from {sorted(known)}")
    return grids


def selection(grids: list[str]) -> str:
    """The -k expression of GRIDS: each grid's test function (test_GRID[...])."""
    return " or ".join(f"test_{grid}" for grid in grids)


def patch(tree: Path, patch_file: Path, reverse: bool = False) -> None:
    direction = "--reverse" if reverse else "--forward"
    args = ["patch", "-p1", direction, "--silent", "--no-backup-if-mismatch", "-i", str(patch_file)]
    proc = subprocess.run(args, cwd=tree, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = proc.stdout.strip() or proc.stderr.strip()
        raise UserError(f"{patch_file.name} does not apply to {tree} ({detail}); pass a linux-6.12 tree")


def restore(tree: Path) -> None:
    """Undo a mutant left applied by an interrupted run."""
    marker = tree / APPLIED
    if marker.exists():
        patch(tree, MUTANTS / marker.read_text().strip(), reverse=True)
        marker.unlink()


def run_suite(tree: Path, out: Path, select: str) -> tuple[Results, float]:
    started = time.monotonic()
    args = build.suite_command(tree, out, SPECS, select)
    subprocess.run(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.json"
    if not results.exists():
        raise UserError(f"the suite wrote no {results}; run it by hand: {' '.join(args)}")
    return load(results), time.monotonic() - started


def classes(results: Results) -> dict[str, tuple[CaseClass, str | None, str]]:
    """case id -> (stored class, rule, spec)."""
    return {c.case_id: (c.case_class, c.rule, c.spec) for c in results.cases}


def compare(
    baseline: dict[str, tuple[CaseClass, str | None, str]], mutant: dict[str, tuple[CaseClass, str | None, str]], outcome: Outcome
) -> None:
    killed: dict[str, list[str]] = defaultdict(list)
    for case_id, (case_class, rule, spec) in mutant.items():
        if spec == "proposal":
            if case_class is CaseClass.OTHER_SPEC:
                outcome.proposal_failures.append(f"{rule}:{case_id}")
            continue
        # A mutant that crashes the guest (ERROR) is killed too: the suite noticed.
        if baseline.get(case_id, (None,))[0] is CaseClass.PASS and case_class in (CaseClass.REGRESSION, CaseClass.INFRASTRUCTURE):
            killed[str(rule)].append(case_id)
    outcome.killed_by = dict(sorted(killed.items()))


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=commands.invoked(COMMAND), description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tree", type=Path, help="a configured linux-6.12 tree (default: workflows.build's tree for --arch)")
    parser.add_argument("--only", nargs="*", default=[], help="mutant names (file names without .patch)")
    parser.add_argument("--select", default=None, help="one -k expression for the baseline and every mutant (default: each patch's Grids:)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "out" / f"mutants-{time.strftime('%Y%m%d-%H%M%S')}", help="results")
    parser.add_argument("--cache-dir", type=cache_option, default=build.DEFAULT_CACHE, help="download and build cache")
    parser.add_argument("--jobs", type=commands.jobs, default=os.cpu_count() or 1, help="make -j")
    parser.add_argument("--baseline", type=Path, help="reuse the unpatched tree's results (RUN/baseline of an earlier make mutants)")
    build.add_target_options(parser)
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    started = time.monotonic()
    try:
        target = build.target_of(args)
        if args.tree:
            tree = args.tree.expanduser().resolve()
        else:
            pristine = build.fetch_source(args.cache_dir, build.DEFAULT_PACKAGE, build.DEFAULT_SUITE)
            tree = build.working_tree(args.cache_dir, pristine, target)
        if not (tree / ".config").exists():
            build.configure(tree, target)
        build.check_tree_target(tree, target)
        restore(tree)
        patches = sorted(MUTANTS.glob("*.patch"))
        if args.only:
            patches = [p for p in patches if p.stem in args.only]
            if len(patches) != len(set(args.only)):
                raise UserError(f"unknown mutant in {args.only}; see {MUTANTS}")
        selects = {p.stem: args.select if args.select is not None else selection(grids_of(p)) for p in patches}
        baseline_select = args.select if args.select is not None else selection(sorted({g for p in patches for g in grids_of(p)}))
        reasons = tomllib.loads(SURVIVORS.read_text()) if SURVIVORS.exists() else {}
        if args.out.exists() and any(args.out.iterdir()):
            raise UserError(f"{args.out} already holds results; pass a new --out")
        args.out.mkdir(parents=True, exist_ok=True)
        if args.baseline and not (args.baseline / "results.json").exists():
            raise UserError(f"--baseline {args.baseline}: no results.json there; pass RUN/baseline of an earlier make mutants")
        if args.baseline:
            base_doc, base_s = load(args.baseline), 0.0
        else:
            print(f"baseline: building {tree}", flush=True)
            build.build(tree, args.jobs)
            base_doc, base_s = run_suite(tree, args.out / "baseline", baseline_select)
        baseline = classes(base_doc)
        base_fail = sorted({f"{r}" for c, r, _ in baseline.values() if c in (CaseClass.REGRESSION, CaseClass.INFRASTRUCTURE)})
        base_proposal = sorted({f"{r}" for c, r, s in baseline.values() if c is CaseClass.OTHER_SPEC and s == "proposal"})
        print(f"baseline: {len(baseline)} cases in {base_s:.0f} s", flush=True)
        print(f"  upstream FAIL/ERROR rules: {base_fail or 'none'}; proposal FAIL rules: {base_proposal or 'none'}", flush=True)
        outcomes = []
        for patch_file in patches:
            outcome = Outcome(patch_file.stem, patch_file.read_text().splitlines()[0].removeprefix("Mutant: "))
            patch(tree, patch_file)
            (tree / APPLIED).write_text(patch_file.name)
            try:
                began = time.monotonic()
                try:
                    build.build(tree, args.jobs)
                except UserError as err:
                    outcome.built = False
                    outcome.reason = f"does not build: {err}"
                outcome.build_s = time.monotonic() - began
                if outcome.built:
                    document, outcome.run_s = run_suite(tree, args.out / outcome.name, selects[outcome.name])
                    ran = classes(document)
                    compare(baseline, ran, outcome)
                    outcome.untested = all(case_class is CaseClass.SKIP for case_class, _, _ in ran.values())
            finally:
                patch(tree, patch_file, reverse=True)
                (tree / APPLIED).unlink()
            if outcome.untested:
                outcome.reason = "no case of its grids ran on this tree: each SKIPped (a kernel option the test kernel lacks?)"
            elif not outcome.killed and outcome.built:
                unexplained = f"(no explanation recorded in {SURVIVORS.relative_to(REPO)})"
                outcome.reason = str(reasons.get(outcome.name, {}).get("reason", unexplained))
                outcome.explained = outcome.name in reasons
            outcomes.append(outcome)
            print(line(outcome), flush=True)
        build.build(tree, args.jobs)  # leave the tree built as it was
    except (UserError, ResultsError) as err:
        print(f"{commands.invoked(COMMAND)}: error: {err}", file=sys.stderr)
        return Exit.USAGE
    killed = sum(o.killed for o in outcomes)
    built = sum(o.built and not o.untested for o in outcomes)
    explained = sum(o.explained for o in outcomes)
    total_s = time.monotonic() - started
    rate = 100 * killed / max(built, 1)
    print(f"\nkill rate: {killed}/{built} mutants killed ({rate:.0f}%), {total_s / 60:.1f} min in all; results in {args.out}")
    print(f"  {killed}/{built - explained} killed of those not explained as equivalent in {SURVIVORS.relative_to(REPO)}")
    for o in outcomes:
        if o.built and not o.killed and not o.untested:
            print(f"  survivor {o.name}: {o.reason}")
        elif not o.built or o.untested:
            print(f"  not counted, {o.name}: {o.reason}")
    summary = {"tree": str(tree), "baseline_s": base_s, "total_s": total_s, "mutants": [asdict(o) for o in outcomes]}
    (args.out / "mutants.json").write_text(json.dumps(summary, indent=1))
    return exit_status(outcomes)


def exit_status(outcomes: list[Outcome]) -> int:
    """0 when every built mutant that ran a case is killed or explained in survivors.toml (an equivalent
    mutant no observation can tell apart), 1 while one survives unexplained. A mutant none of whose
    cases ran (UNTESTED) is counted with neither."""
    return Exit.CLEAN if all(o.killed or o.explained for o in outcomes if o.built and not o.untested) else Exit.REGRESSION


def line(o: Outcome) -> str:
    if not o.built:
        return f"{o.name:32} NOT BUILT  {o.reason}"
    if o.untested:
        return f"{o.name:32} UNTESTED build {o.build_s:4.0f} s, run {o.run_s:4.0f} s; {o.reason}"
    rules = ", ".join(f"{rule} ({len(cases)})" for rule, cases in o.killed_by.items()) or "-"
    proposal_rules = sorted({p.split(":")[0] for p in o.proposal_failures})
    proposal = f"; proposal FAIL: {', '.join(proposal_rules)}" if proposal_rules else "; proposal: all pass"
    verdict = "KILLED" if o.killed else "SURVIVED"
    return f"{o.name:32} {verdict:8} build {o.build_s:4.0f} s, run {o.run_s:4.0f} s; killed by: {rules}{proposal}"


if __name__ == "__main__":
    commands.entry(COMMAND.name, main)
