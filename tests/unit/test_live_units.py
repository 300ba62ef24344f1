"""Live mode without services: the replay clock's arithmetic and the notices' parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from flightpipe.live import notices
from flightpipe.live.clock import Clock, day_start, local_day
from flightpipe.settings import Settings

WALL = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_clock_runs_at_its_speed_from_its_anchor() -> None:
    clock = Clock("live", day_start(date(2013, 3, 4)), WALL, speed=480.0)
    # 3 wall minutes at 480x are one replay day.
    assert clock.now(WALL + timedelta(minutes=3)) == day_start(date(2013, 3, 5))
    assert clock.now(WALL) == day_start(date(2013, 3, 4))


def test_days_are_new_york_days() -> None:
    start = day_start(date(2013, 7, 1))
    assert start.utcoffset() == timedelta(hours=-4)  # summer time
    assert day_start(date(2013, 1, 1)).utcoffset() == timedelta(hours=-5)
    assert local_day(start) == date(2013, 7, 1)
    assert local_day(start - timedelta(microseconds=1)) == date(2013, 6, 30)
    # The day clocks change has 23 hours (in instants: same-zone subtraction is wall time).
    spring = day_start(date(2013, 3, 11)).astimezone(UTC) - day_start(date(2013, 3, 10))
    assert spring == timedelta(hours=23)


def test_wait_until_a_replay_instant_is_never_negative() -> None:
    clock = Clock("live", day_start(date(2013, 3, 4)), datetime.now(UTC), speed=86_400.0)
    assert clock.wall_seconds_until(day_start(date(2013, 3, 3))) == 0.0
    later = clock.wall_seconds_until(day_start(date(2013, 3, 6)))
    assert 1.9 < later <= 2.0


class FakeMessage:
    def __init__(self, value: bytes | None) -> None:
        self._value = value

    def value(self) -> bytes | None:
        return self._value


def test_a_notice_round_trips_into_the_event_payload() -> None:
    files = [notices.LandedRange("flights", 3, 100, 199)]
    payload = notices.accept(FakeMessage(notices.encode("live-1", files, 100)))
    assert payload is not None
    assert payload["member"] == "live-1" and payload["landed"] == 100
    assert payload["files"] == [{"topic": "flights", "partition": 3, "first": 100, "last": 199}]
    msgspec.json.encode(payload)  # the triggerer serialises it


@given(
    st.one_of(
        st.none(),
        st.binary(max_size=200),
        st.builds(
            lambda v: msgspec.json.encode(v),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                lambda c: (
                    st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3)
                ),
            ),
        ),
    )
)
def test_anything_else_on_the_topic_is_ignored(value: Any) -> None:
    # A notice needs every field with its type; nothing else may start a load or raise.
    assert notices.accept(FakeMessage(value)) is None


def test_the_notices_topic_follows_the_prefix() -> None:
    settings = Settings(_env_file=None, topic_prefix="t1-")  # type: ignore[call-arg]
    assert notices.topic(settings) == "t1-landing.notices"


def test_reports_and_model_follow_at_their_own_pace() -> None:
    from datetime import UTC, datetime, timedelta

    from flightpipe.live.cadence import behind

    load = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    later, earlier = load + timedelta(seconds=1), load - timedelta(seconds=1)
    assert not behind(None, [None, None]), "no load yet: nothing to follow"
    assert behind(load, [None, later]), "a follower that never succeeded"
    assert behind(load, [later, earlier]), "one follower started before the load finished"
    assert not behind(load, [later, load]), "both started once it had finished"
