"""Wire files: the cached key and value of every event are exactly what encoding the source
events gives, for any slice; a stale or broken file is built again."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import msgspec
import pytest

from flightpipe import source
from flightpipe.contract.events import Event
from flightpipe.ingest import ROLES, wire
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings

PRODUCER = "flights-EWR@host:123"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def _expected(role: str, replay: ReplaySlice | None) -> dict[str, list[Event]]:
    if role.startswith("flights-"):
        return {"flights": source.flight_events(replay, role.removeprefix("flights-"), PRODUCER)}
    if role == "weather":
        return {"weather": source.weather_events(replay, None, PRODUCER)}
    return {
        "airlines": source.airline_events(PRODUCER),
        "airports": source.airport_events(PRODUCER),
        "planes": source.plane_events(PRODUCER),
    }


@pytest.mark.parametrize(
    ("role", "replay"),
    [
        ("flights-JFK", None),
        ("flights-EWR", ReplaySlice(date(2013, 1, 29), 7)),  # crosses a month end
        ("flights-LGA", ReplaySlice(date(2013, 3, 10), 1)),  # spring DST change
        ("flights-EWR", ReplaySlice(date(2013, 12, 30), 5)),  # runs past the year
        ("weather", ReplaySlice(date(2013, 11, 3), 2)),  # the repeated local hour
        ("weather", None),
        ("reference", ReplaySlice(date(2013, 6, 1), 1)),  # reference ignores the slice
    ],
)
def test_outboxes_are_the_encoded_source_events(
    home: Path, role: str, replay: ReplaySlice | None
) -> None:
    settings = Settings(home=home, topic_prefix="t-")
    start, end = (None, None) if replay is None else (replay.start, replay.end)
    boxes = wire.outboxes(settings, role, PRODUCER, start, end)
    expected = _expected(role, replay)
    assert [b.topic for b in boxes] == [f"t-{topic}" for topic in expected]
    encode = msgspec.json.Encoder().encode
    for box, events in zip(boxes, expected.values(), strict=True):
        assert box.values == [encode(e) for e in events]
        assert box.keys == [e.key().encode() for e in events]
        times = [getattr(e, "event_time", None) for e in events]
        assert [wire.event_time(ms) if ms else None for ms in box.event_ms] == times


def test_every_role_has_topics() -> None:
    assert {t for role in ROLES for t in wire.role_topics(role)} == {
        "flights", "weather", "airlines", "airports", "planes",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown producer role"):
        wire.role_topics("flights-XYZ")


def test_a_broken_file_is_built_again(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    day = date(2013, 7, 1)
    first = wire.outboxes(settings, "reference", PRODUCER, day, day)
    files = sorted(wire.cache_dir(settings).iterdir())
    assert [f.name.split(".")[:2] for f in files] == [
        ["reference", "airlines"], ["reference", "airports"], ["reference", "planes"],
    ]  # fmt: skip
    assert all(wire.fingerprint() in f.name for f in files)
    files[1].write_bytes(b"ARROW1 not arrow")
    assert wire.outboxes(settings, "reference", PRODUCER, day, day) == first
    assert sorted(wire.cache_dir(settings).iterdir()) == files  # no temp file left behind


def test_files_of_older_code_are_removed_when_built_again(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    stale = wire.cache_dir(settings) / "reference.airlines.0123456789abcdef.arrow"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an older release")
    wire.outboxes(settings, "reference", PRODUCER, None, None)
    assert not stale.exists()
    assert len(list(wire.cache_dir(settings).iterdir())) == 3


def test_cache_dir_is_under_home(tmp_path: Path) -> None:
    assert wire.cache_dir(Settings(home=tmp_path)) == tmp_path / ".cache" / "wire"
