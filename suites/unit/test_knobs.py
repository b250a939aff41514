"""Guest state kept between cases: THP knobs are saved on their first change and go back before the
next case unless it sets them itself (fixtures/thp.py, on real files standing in for sysfs); pages
a case drops on purpose read as zero (fixtures/memory.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import thp


@pytest.fixture
def knobs(tmp_path: Path) -> Iterator[dict[str, Path]]:
    files = {name: tmp_path / name for name in ("enabled", "defrag")}
    files["enabled"].write_text("[always] madvise never\n")  # a choice knob: read() takes the selected word
    files["defrag"].write_text("madvise\n")
    thp._saved.clear()
    yield files
    thp._saved.clear()


def test_a_write_of_the_value_a_knob_holds_saves_nothing(knobs: dict[str, Path]) -> None:
    thp.write(str(knobs["defrag"]), "madvise")
    assert thp._saved == {}


def test_a_knob_the_next_case_sets_is_kept_and_the_others_go_back(knobs: dict[str, Path]) -> None:
    enabled, defrag = str(knobs["enabled"]), str(knobs["defrag"])
    thp.write(enabled, "never")
    thp.write(defrag, "never")
    assert thp.restore(keep=frozenset({enabled})) == {defrag: "madvise"}
    assert thp.read(defrag) == "madvise" and thp.read(enabled) == "never"
    thp.write(enabled, "madvise")  # the next case's own value; the first saved value stays
    assert thp.restore() == {enabled: "always"}
    assert thp._saved == {}
