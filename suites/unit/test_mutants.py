"""Every mutant names the grids it breaks, and they are grids of the rule book."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.exits import UserError
from reports.record import CaseClass
from workflows import mutants


@pytest.mark.parametrize("patch_file", mutants.patch_files(), ids=lambda p: p.stem)
def test_each_mutant_names_known_grids(patch_file: Path) -> None:
    assert mutants.grids_of(patch_file)


def test_a_patch_without_grids_is_refused_with_the_fix(tmp_path: Path) -> None:
    bare = tmp_path / "99-bare.patch"
    bare.write_text("Mutant: nothing\n\n--- a/mm/x.c\n+++ b/mm/x.c\n")
    with pytest.raises(UserError, match="'Grids:' line"):
        mutants.grids_of(bare)
    bare.write_text("Mutant: nothing\nGrids: eligibility nosuchgrid\n")
    with pytest.raises(UserError, match="'Grids:' line"):
        mutants.grids_of(bare)


@pytest.mark.parametrize("patch_file", mutants.patch_files(), ids=lambda p: p.stem)
def test_each_mutant_names_a_known_source(patch_file: Path) -> None:
    assert mutants.source_of(patch_file) in mutants.SOURCES


def test_a_patch_names_its_release_or_is_for_the_default_one(tmp_path: Path) -> None:
    patch_file = tmp_path / "99-x.patch"
    patch_file.write_text("Mutant: x\nGrids: holes\n")
    assert mutants.source_of(patch_file) == mutants.DEFAULT_SOURCE
    patch_file.write_text("Mutant: x\nGrids: holes\nSource: 7.2\n")
    assert mutants.source_of(patch_file) == "7.2"
    patch_file.write_text("Mutant: x\nGrids: holes\nSource: 5.4\n")
    with pytest.raises(UserError, match="name one of them"):
        mutants.source_of(patch_file)


def test_a_tree_release_is_read_from_its_makefile(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("# SPDX-License-Identifier: GPL-2.0\nVERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\n")
    assert mutants.release_of(tmp_path) == "7.2"
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(UserError, match="pass a kernel tree"):
        mutants.release_of(tmp_path)


def test_the_selection_names_each_grids_test_function() -> None:
    assert mutants.selection(["blocks", "holes"]) == "test_blocks or test_holes"


def test_make_mutants_fails_only_on_a_survivor_nobody_explained() -> None:
    killed = mutants.Outcome("02", "", killed_by={"A1": ["case"]})
    equivalent = mutants.Outcome("01", "", explained=True)
    unbuilt = mutants.Outcome("07", "", built=False)
    assert mutants.exit_status([killed, equivalent, unbuilt]) == 0
    assert mutants.exit_status([killed, mutants.Outcome("31", "")]) == 1


def test_a_mutant_whose_cases_all_skipped_is_untested_not_a_survivor() -> None:
    untested = mutants.Outcome("36", "", untested=True, reason="no case of its grids ran")
    assert mutants.exit_status([untested]) == 0
    assert "UNTESTED" in mutants.line(untested) and "SURVIVED" not in mutants.line(untested)


def _run(tmp_path: Path, name: str, *outcomes: mutants.Outcome, finished: bool = True) -> Path:
    import dataclasses
    import json

    run = tmp_path / name
    run.mkdir()
    (run / "mutants.json").write_text(json.dumps({"finished": finished, "mutants": [dataclasses.asdict(o) for o in outcomes]}))
    return run


def test_the_docs_mark_the_rows_of_an_interrupted_run(tmp_path: Path) -> None:
    run = _run(tmp_path, "mutants-3", mutants.Outcome("02-proposal-never-refused", "", killed_by={"A1": ["a"]}), finished=False)
    block, _ = mutants.docs_text(mutants.measured([run]))
    assert "| A1 (1) | mutants-3 (interrupted) |" in block
    assert "(runs mutants-3 at unknown (interrupted))" in block


def test_the_docs_table_takes_each_mutant_from_the_last_run_and_lists_every_patch(tmp_path: Path) -> None:
    first = _run(tmp_path, "mutants-1", mutants.Outcome("02-proposal-never-refused", "", killed_by={"A1": ["a", "b"]}))
    second = _run(
        tmp_path,
        "mutants-2",
        mutants.Outcome("02-proposal-never-refused", "", killed_by={"A1": ["a"], "A8": ["c"]}),
        mutants.Outcome("01-nohugepage-ignored", "", explained=True),
    )
    block, readme = mutants.docs_text(mutants.measured([first, second]))
    rows = [line for line in block.splitlines() if line[2:4].isdigit()]
    assert len(rows) == len(mutants.patch_files())
    assert "| A1 (1), A8 (1) | mutants-2 |" in block
    assert "survived: equivalent (below) | mutants-2 |" in block
    assert "1 of 2 mutants killed (50%), 1 of 1 not explained as equivalent" in readme
    assert f"2 of the {len(rows)} mutants measured" in readme
    assert "Not measured: 03-max-ptes-none-honoured" in block


def test_write_docs_without_a_finished_run_is_one_line_naming_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mutants.main(["--write-docs", str(tmp_path)]) == 4
    error = capsys.readouterr().err.strip()
    assert "no mutants.json" in error and "\n" not in error


def test_the_docs_hold_a_generated_row_for_every_mutant() -> None:
    for path in mutants.DOCS:
        text = path.read_text()
        assert mutants.BEGIN in text and mutants.END in text, path
    table = mutants.DOCS[0].read_text()
    for patch_file in mutants.patch_files():
        assert f"| {patch_file.stem} |" in table, f"{patch_file.stem}: run python -m workflows.mutants --write-docs RUN ..."


@pytest.mark.parametrize("text", ["{bad", "[1, 2]", '{"mutants": [{"nom": 1}]}'])
def test_write_docs_on_a_bad_summary_is_one_line_naming_the_fix(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mutants.json").write_text(text)
    assert mutants.main(["--write-docs", str(tmp_path)]) == 4
    error = capsys.readouterr().err.strip()
    assert "not a make mutants summary" in error and "pass the --out directory" in error and "\n" not in error


def test_the_docs_are_the_records(tmp_path: Path) -> None:
    """docs/mutants.md and the README hold what suites/mutants/measured.json gives (--write-docs without a run)."""
    for path, block in zip(mutants.DOCS, mutants.docs_text(mutants.recorded()), strict=True):
        assert block in path.read_text(), f"{path.name} is not the record's: run python -m workflows.mutants --write-docs"


def test_the_record_keeps_what_it_was_given_and_a_bad_one_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "measured.json"
    found = {"02-proposal-never-refused": mutants.Measured("mutants-1", "abc", killed_by={"A1": 2})}
    mutants.record(found, path)
    assert mutants.recorded(path) == found
    path.write_text('{"mutants": {"02": {"run": "x", "colour": "red"}}}')
    with pytest.raises(UserError, match="restore it from git"):
        mutants.recorded(path)
    assert mutants.recorded(tmp_path / "absent.json") == {}


def test_the_rules_no_mutant_failed_are_named() -> None:
    everything = mutants.unkilled_rules({})
    assert "C21" in everything and not any(rule.startswith("DOC.") for rule in everything)
    killed = {"50": mutants.Measured("mutants-1", "abc", killed_by={"C21": 2})}
    assert "C21" not in mutants.unkilled_rules(killed)
    assert "A5.absent" not in everything  # a skip rule expects nothing to fail


def test_each_unmutated_rule_is_an_upstream_rule_no_mutant_failed() -> None:
    reasons = mutants.unmutated()
    assert reasons and all(reason for reason in reasons.values())
    assert not set(reasons) - set(mutants.unkilled_rules({})), "unmutated.toml names a rule that is no upstream rule"
    killed = set(reasons) - set(mutants.unkilled_rules(mutants.recorded()))
    assert not killed, f"a mutant fails these, so unmutated.toml must not excuse them: {sorted(killed)}"


def test_a_malformed_unmutated_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "unmutated.toml"
    for text in ('[A19]\nwhy = "x"\n', "[A19]\nreason = 3\n", 'A19 = "x"\n'):
        path.write_text(text)
        with pytest.raises(UserError, match="give each rule a table with a reason"):
            mutants.unmutated(path)


def test_an_interrupted_mutant_reverts_though_its_patch_file_changed(tmp_path: Path) -> None:
    tree, patch_file = tmp_path / "tree", tmp_path / "01-x.patch"
    (tree / "mm").mkdir(parents=True)
    (tree / "mm" / "a.c").write_text("int a = 1;\n")
    patch_file.write_text("Mutant: X\nGrids: blocks\n\n--- a/mm/a.c\n+++ b/mm/a.c\n@@ -1 +1 @@\n-int a = 1;\n+int a = 2;\n")
    mutants.patch(tree, patch_file)
    (tree / mutants.APPLIED).write_text(patch_file.read_text())
    patch_file.write_text(patch_file.read_text().replace("a = 2", "a = 3"))  # edited while applied
    mutants.restore(tree)
    assert (tree / "mm" / "a.c").read_text() == "int a = 1;\n" and not (tree / mutants.APPLIED).exists()
    (tree / mutants.APPLIED).write_text(patch_file.read_text())  # stopped after its revert: nothing to undo
    mutants.restore(tree)
    assert (tree / "mm" / "a.c").read_text() == "int a = 1;\n" and not (tree / mutants.APPLIED).exists()
    (tree / "mm" / "a.c").write_text("int a = 5;\n")  # neither reverts nor applies
    (tree / mutants.APPLIED).write_text(patch_file.read_text())
    with pytest.raises(UserError, match="rebuild the tree"):
        mutants.restore(tree)


def test_a_patch_without_its_number_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "12-b.patch").write_text("")
    (tmp_path / "9-a.patch").write_text("")
    monkeypatch.setattr(mutants, "MUTANTS", tmp_path)
    assert [p.name for p in mutants.patch_files()] == ["9-a.patch", "12-b.patch"]
    (tmp_path / "x-c.patch").write_text("")
    with pytest.raises(UserError, match="start its name with its number"):
        mutants.patch_files()


def test_a_survivor_explained_after_its_run_counts_as_explained() -> None:
    found = {
        "01-nohugepage-ignored": mutants.Measured("mutants-1", "abc", explained=False),
        "02-proposal-never-refused": mutants.Measured("mutants-1", "abc", killed_by={"A1": 2}),
    }
    now = mutants.with_explanations(found)
    assert now["01-nohugepage-ignored"].explained and not now["02-proposal-never-refused"].explained


def test_a_case_that_passes_on_the_baseline_and_fails_on_the_mutant_kills_it() -> None:
    baseline = {"a": (CaseClass.PASS, "A1", "upstream"), "b": (CaseClass.PASS, "A2", "upstream")}
    outcome = mutants.Outcome("02-x", "X")
    mutants.compare(baseline, {"a": (CaseClass.REGRESSION, "A1", "upstream"), "b": (CaseClass.PASS, "A2", "upstream")}, outcome)
    assert outcome.killed_by == {"A1": ["a"]}


def test_a_reused_baseline_without_the_mutants_cases_is_a_one_line_error() -> None:
    baseline = {"a": (CaseClass.PASS, "A1", "upstream")}
    with pytest.raises(UserError, match="the baseline has no result for 1 of 02-x's cases"):
        mutants.compare(baseline, {"c": (CaseClass.REGRESSION, "C1", "upstream")}, mutants.Outcome("02-x", "X"))
