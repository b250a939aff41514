"""The rule book speaks the guest's language: every dimension of rules.toml is a dimension of the
guest's step table, and every value one the guest takes (fixtures/steps.py DIMENSIONS). A value
mistyped in rules.toml fails here, not as an ERROR inside a VM."""

from __future__ import annotations

import pytest

from fixtures import steps, workload
from suites import rulebook
from vm import agent

BOOK = rulebook.load()


@pytest.mark.parametrize("test", sorted(BOOK.tests))
def test_every_dimension_and_value_is_the_guest_s(test: str) -> None:
    for dimension, values in BOOK.tests[test].dimensions.items():
        assert dimension in steps.VOCABULARY, f"test {test}: dimension {dimension!r} is not in fixtures.steps.DIMENSIONS"
        unknown = set(values) - steps.VOCABULARY[dimension]
        assert not unknown, f"test {test}: {dimension} values {sorted(unknown)} are not in fixtures.steps.DIMENSIONS"


def test_every_dimension_has_its_own_step_and_a_default_it_takes() -> None:
    names = [dimension.name for dimension in steps.DIMENSIONS]
    assert len(names) == len(set(names))
    for dimension in steps.DIMENSIONS:
        assert issubclass(dimension.step, steps.Step) and dimension.step is not steps.Step, dimension.name
        assert dimension.default in dimension.values | {""}, dimension.name


def test_the_defaults_make_a_case() -> None:
    request = steps.Request.of({})
    assert [type(step) for step in request.steps().values()] == [
        steps.Mode,
        steps.Caller,
        steps.Nice,
        steps.Prctl,
        steps.Memory,
        steps.Advice,
        steps.Populate,
    ]
    assert workload.knobs_for(request) == {"enabled": "madvise"}


def test_a_mistyped_value_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="mode='allways' is not a value the guest workload takes"):
        steps.Request.of({"mode": "allways"})


def test_the_agent_refuses_a_mistyped_dimension() -> None:
    """It used to drop unknown keys silently and run the case with defaults."""
    with pytest.raises(ValueError, match=r"unknown case keys \['modee'\]"):
        agent.run_case({"memory": "anon", "modee": "never"})


def test_a_step_stands_in_for_the_one_it_replaces() -> None:
    """An owner that keeps the PR_SET_THP_DISABLE it inherited sets none: no prctl step."""
    chosen = steps.Request.of({"inherit": "fork"}).steps()
    assert "inherit" in chosen and "prctl" not in chosen
    assert steps.Request.of({"inherit": "exec"}).steps()["inherit"].owner_module == "fixtures.exec_owner"
