"""Every mutant names the grids it breaks, and they are grids of the rule book."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.exits import UserError
from workflows import mutants


@pytest.mark.parametrize("patch_file", sorted(mutants.MUTANTS.glob("*.patch")), ids=lambda p: p.stem)
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
