"""fixtures.numa's pure parts: the majority node (as the collapse chooses it) and the per-node split."""

from __future__ import annotations

import pytest

from fixtures import numa


@pytest.mark.parametrize(
    ("nodes", "majority"),
    [([1, 1, 0], 1), ([0, 1], 0), ([1, 0, 1, 0], 0), ([-2, -2], None), ([], None), ([-14, 1, 1, 0], 1)],
)
def test_majority_is_the_most_pages_and_the_lowest_on_a_tie(nodes: list[int], majority: int | None) -> None:
    assert numa.majority(nodes) == majority


def test_split_counts_pages_per_node_from_node_0() -> None:
    assert numa.split([1, 1, 1, 0, -2]) == (1, 3)
    assert numa.split([1]) == (0, 1)
    assert numa.split([-2]) == ()


def test_sysfs_node_lists() -> None:
    assert numa.node_list("0\n") == frozenset({0})
    assert numa.node_list("0-1,3") == frozenset({0, 1, 3})
