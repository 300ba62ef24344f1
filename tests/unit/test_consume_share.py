"""A run's members deal the partitions among themselves: every partition exactly once, as
evenly per topic as can be, whatever the count."""

from __future__ import annotations

import pytest

from flightpipe.ingest.consume import share_of

# The input topics in contract order, with the default partition counts.
PARTITIONS = [("airlines", 0), ("airports", 0), ("planes", 0)]
PARTITIONS += [("weather", p) for p in range(3)] + [("flights", p) for p in range(6)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 12, 13])
def test_every_partition_goes_to_exactly_one_member(count: int) -> None:
    shares = [share_of(PARTITIONS, i, count) for i in range(count)]
    dealt = [tp for share in shares for tp in share]
    assert sorted(dealt) == sorted(PARTITIONS)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_three_members_each_take_two_flights_and_one_of_the_rest() -> None:
    for i in range(3):
        mine = share_of(PARTITIONS, i, 3)
        assert sum(t == "flights" for t, _ in mine) == 2
        assert sum(t == "weather" for t, _ in mine) == 1
        assert sum(t in ("airlines", "airports", "planes") for t, _ in mine) == 1


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 3), (0, 0)])
def test_a_member_outside_the_run_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="not one of"):
        share_of(PARTITIONS, index, count)
