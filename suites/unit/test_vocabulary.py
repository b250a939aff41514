"""The rule book speaks the guest's language: every dimension of rules.toml is a field of the guest
workload's Request, and every value one the guest takes (fixtures/workload.py VOCABULARY). A value
mistyped in rules.toml fails here, not as an ERROR inside a VM."""

from __future__ import annotations

import dataclasses

import pytest

from fixtures import workload
from suites import rulebook
from vm import agent

BOOK = rulebook.load()
FIELDS = {f.name for f in dataclasses.fields(workload.Request)}


@pytest.mark.parametrize("test", sorted(BOOK.tests))
def test_every_dimension_and_value_is_the_guest_s(test: str) -> None:
    for dimension, values in BOOK.tests[test].dimensions.items():
        assert dimension in FIELDS, f"test {test}: dimension {dimension!r} is not a field of fixtures.workload.Request"
        unknown = set(values) - workload.VOCABULARY[dimension]
        assert not unknown, f"test {test}: {dimension} values {sorted(unknown)} are not in fixtures.workload.VOCABULARY"


def test_every_request_field_but_knobs_has_a_vocabulary() -> None:
    assert set(workload.VOCABULARY) == FIELDS - {"knobs"}


def test_the_defaults_are_in_the_vocabulary() -> None:
    workload.check_request(workload.Request())


def test_a_mistyped_value_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="mode='allways' is not a value the guest workload takes"):
        workload.check_request(workload.Request(mode="allways"))


def test_the_agent_refuses_a_mistyped_dimension() -> None:
    """It used to drop unknown keys silently and run the case with defaults."""
    with pytest.raises(ValueError, match=r"unknown case keys \['modee'\]"):
        agent.run_case({"memory": "anon", "modee": "never"})
