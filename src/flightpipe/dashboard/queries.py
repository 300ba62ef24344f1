"""What the live dashboard shows, as plain functions: SQL over the marts and ``meta`` (as the
reader role), and the landing group's lag and the dead letters from Kafka.

The app (:mod:`flightpipe.dashboard.app`) only lays these out; tests call them directly.
Every function takes an open reader connection (or the settings for Kafka) and returns
plain values or frames; none of them writes anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Final

import pandas as pd
import psycopg

from flightpipe.ingest import dlq
from flightpipe.ingest.lag import lag_by_partition
from flightpipe.live import notices
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

# Flights landed and loaded "lately": notices and load batches of this many minutes.
RECENT_MINUTES: Final = 10
LAST_BATCHES: Final = 10
LATEST_PREDICTIONS: Final = 12

REPLAY_CLOCK_SQL: Final = """
SELECT (SELECT next_day FROM meta.replay_cursor) AS next_day,
       (SELECT updated_at FROM meta.replay_cursor) AS cursor_moved_at,
       max(f.sched_dep_at) AS latest_event,
       max(d.full_date) AS latest_day
FROM dw.fact_flight AS f
JOIN dw.dim_date AS d ON d.date_key = f.date_key
-- The newest local day holds the newest departure: the index on the natural key finds it.
WHERE f.date_key = (SELECT max(date_key) FROM dw.fact_flight)
"""

RECENT_FLIGHTS_SQL: Final = """
SELECT coalesce(sum((counts -> 'topics' -> 'flights' ->> 'loaded')::bigint), 0) AS flights,
       count(*) AS batches
FROM meta.load_batches
WHERE status = 'succeeded' AND finished_at >= now() - make_interval(mins => %(minutes)s)
"""

ORIGIN_DAY_SQL: Final = """
SELECT origin, full_date, flights, cancelled, arrived, on_time, on_time_rate,
       mean_dep_delay, mean_arr_delay
FROM mart.origin_daily
WHERE full_date = %(day)s
ORDER BY origin
"""

LAST_BATCHES_SQL: Final = """
SELECT b.batch_id, b.status, b.started_at, b.finished_at, b.files, b.rows_in, b.rows_loaded,
       b.rows_rejected, b.rows_duplicate,
       (b.counts -> 'topics' -> 'flights' ->> 'loaded')::bigint AS flights,
       fr.p50_s, fr.p95_s
FROM meta.load_batches AS b
LEFT JOIN meta.freshness AS fr ON fr.batch_id = b.batch_id AND fr.topic = 'flights'
ORDER BY b.batch_id DESC
LIMIT %(limit)s
"""

FRESHNESS_SQL: Final = """
SELECT batch_id, topic, rows, committed_at, p50_s, p95_s, max_s
FROM meta.freshness
WHERE topic = 'flights'
ORDER BY batch_id DESC
LIMIT %(limit)s
"""

REJECTED_SQL: Final = """
SELECT topic, reason, count(*) AS rows
FROM meta.rejected_rows
GROUP BY topic, reason
ORDER BY rows DESC, topic, reason
"""

# The newest model's newest scored day: its flights, predicted against what happened.
PREDICTIONS_SQL: Final = """
WITH latest AS (
    SELECT model_run_id, max(full_date) AS full_date
    FROM mart.prediction_outcomes
    WHERE model_run_id = (SELECT max(model_run_id) FROM ml.predictions)
    GROUP BY model_run_id
)
SELECT o.model_run_id, o.full_date, o.carrier_code, o.flight_number, o.origin, o.dest,
       o.sched_dep_at, o.probability, o.predicted_label, o.arr_delay_min, o.actual_label
FROM mart.prediction_outcomes AS o
JOIN latest AS l ON l.model_run_id = o.model_run_id AND l.full_date = o.full_date
ORDER BY o.sched_dep_at DESC, o.carrier_code, o.flight_number
"""


def _frame(conn: psycopg.Connection[Any], query: str, params: Any = None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [c.name for c in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


@dataclass(frozen=True)
class ReplayClock:
    next_day: date | None  # the day the next ingest run replays
    cursor_moved_at: datetime | None
    latest_event: datetime | None  # the newest scheduled departure loaded (UTC)
    latest_day: date | None  # its local date: the "current" day
    live_now: datetime | None = None  # live mode: the replay clock's time now
    speed: float | None = None  # live mode: replay seconds per wall second


def replay_clock(conn: psycopg.Connection[Any]) -> ReplayClock:
    from flightpipe.live.clock import local_day, read_from

    row = conn.execute(REPLAY_CLOCK_SQL).fetchone()
    clock = ReplayClock(*row) if row else ReplayClock(None, None, None, None)
    live = read_from(conn)
    if live is None or live.mode != "live":
        return clock
    now = live.now()
    # Live, the day being replayed is the clock's: a warehouse that already holds later days
    # (a replay that wrapped round the year) must not show those as "current".
    return replace(clock, live_now=now, speed=live.speed, latest_day=local_day(now))


def recent_flights(conn: psycopg.Connection[Any], minutes: int = RECENT_MINUTES) -> int:
    """Flights loaded (staged and upserted) by the batches committed in the last minutes."""
    row = conn.execute(RECENT_FLIGHTS_SQL, {"minutes": minutes}).fetchone()
    return int(row[0]) if row else 0


def origin_day(conn: psycopg.Connection[Any], day: date | None) -> pd.DataFrame:
    """Per origin airport on ``day``: flights, on-time rate, mean delays."""
    if day is None:
        return pd.DataFrame(columns=["origin", "flights", "on_time_rate", "mean_dep_delay"])
    return _frame(conn, ORIGIN_DAY_SQL, {"day": day})


def last_batches(conn: psycopg.Connection[Any], limit: int = LAST_BATCHES) -> pd.DataFrame:
    return _frame(conn, LAST_BATCHES_SQL, {"limit": limit})


def freshness(conn: psycopg.Connection[Any], limit: int = 50) -> pd.DataFrame:
    """The flights' freshness of the last ``limit`` measured batches, newest first."""
    return _frame(conn, FRESHNESS_SQL, {"limit": limit})


def rejected(conn: psycopg.Connection[Any]) -> pd.DataFrame:
    return _frame(conn, REJECTED_SQL)


def predictions(conn: psycopg.Connection[Any]) -> pd.DataFrame:
    return _frame(conn, PREDICTIONS_SQL)


@dataclass(frozen=True)
class PredictionScore:
    model_run_id: int | None
    day: date | None
    scored: int
    labelled: int  # flights that arrived, so have an actual label
    predicted_late: int
    actually_late: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def score(frame: pd.DataFrame) -> PredictionScore:
    """How the predictions of :func:`predictions` fared against what happened."""
    if frame.empty:
        return PredictionScore(None, None, 0, 0, 0, 0, 0)
    known = frame[frame["actual_label"].notna()]
    return PredictionScore(
        model_run_id=int(frame["model_run_id"].iloc[0]),
        day=frame["full_date"].iloc[0],
        scored=len(frame),
        labelled=len(known),
        predicted_late=int((frame["predicted_label"] == 1).sum()),
        actually_late=int((known["actual_label"] == 1).sum()),
        correct=int((known["predicted_label"] == known["actual_label"]).sum()),
    )


@dataclass
class Snapshot:
    """Everything one refresh shows; ``errors`` names the sources that did not answer."""

    taken_at: datetime
    clock: ReplayClock | None = None
    recent_flights: int | None = None
    landed_flights: int | None = None
    origins: pd.DataFrame = field(default_factory=pd.DataFrame)
    batches: pd.DataFrame = field(default_factory=pd.DataFrame)
    freshness: pd.DataFrame = field(default_factory=pd.DataFrame)
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    lags: pd.DataFrame = field(default_factory=pd.DataFrame)
    dead_letters: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def warehouse_part(settings: Settings, snap: Snapshot) -> None:
    with connect(settings, "reader", autocommit=True) as conn:
        snap.clock = replay_clock(conn)
        snap.recent_flights = recent_flights(conn)
        snap.origins = origin_day(conn, snap.clock.latest_day)
        snap.batches = last_batches(conn)
        snap.freshness = freshness(conn)
        snap.rejected = rejected(conn)
        snap.predictions = predictions(conn)


def kafka_part(settings: Settings, snap: Snapshot) -> None:
    lags = lag_by_partition(settings)
    snap.lags = pd.DataFrame(
        [(p.topic, p.partition, p.end, p.committed, p.lag) for p in lags],
        columns=["topic", "partition", "end", "committed", "lag"],
    )
    snap.dead_letters = dlq.counts(settings)
    snap.landed_flights = notices.landed_since(settings, time.time() - RECENT_MINUTES * 60)


def snapshot(settings: Settings) -> Snapshot:
    """One refresh: the warehouse (reader role) and Kafka; a source that fails is reported
    in ``errors`` and the rest is still shown."""
    snap = Snapshot(taken_at=datetime.now().astimezone())
    for name, part in (("warehouse", warehouse_part), ("kafka", kafka_part)):
        try:
            part(settings, snap)
        except Exception as exc:  # one source down must not blank the whole page
            snap.errors[name] = f"{type(exc).__name__}: {exc}".strip()[:300]
    return snap
