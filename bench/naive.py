"""The baseline: the same job written plainly, the way tutorials show it.

One produce + flush per message, one consumer with auto commit polling one message at a
time, a pandas transform, and one INSERT + COMMIT per row. Only a fixed sample of flights is
timed (the year would take many minutes); each step is extrapolated linearly to the year's
flights. Weather and reference events are left out, which flatters the baseline.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pandas as pd
import psycopg
from confluent_kafka import Consumer, Producer

from bench.common import say
from bench.limits import _create_topic, delete_topic
from flightpipe import source
from flightpipe.settings import Settings

YEAR_FLIGHTS = 336_776

CREATE = """
CREATE TABLE naive_flights (
    id serial PRIMARY KEY,
    year int, month int, day int, carrier text, flight int, origin text, dest text,
    tailnum text, sched_dep timestamp, dep_delay double precision,
    arr_delay double precision, distance double precision, cancelled boolean,
    temp double precision, humid double precision, wind_speed double precision
)
"""
INSERT = """
INSERT INTO naive_flights (year, month, day, carrier, flight, origin, dest, tailnum,
    sched_dep, dep_delay, arr_delay, distance, cancelled, temp, humid, wind_speed)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def _produce(settings: Settings, topic: str, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for record in records:
        producer.produce(topic, json.dumps(record).encode("utf-8"))
        producer.flush()


def _consume(settings: Settings, topic: str, count: int) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"naive-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([topic])
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + 300
    try:
        while len(rows) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            rows.append(json.loads(msg.value()))
    finally:
        consumer.close()
    return rows


def _transform(rows: list[dict[str, Any]], weather: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["sched_dep"] = pd.to_datetime(df[["year", "month", "day", "hour", "minute"]])
    df["cancelled"] = df["dep_time"].isna()
    df = df.merge(
        weather[["origin", "year", "month", "day", "hour", "temp", "humid", "wind_speed"]],
        on=["origin", "year", "month", "day", "hour"],
        how="left",
    )
    return df


def _load(dsn: str, df: pd.DataFrame) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(CREATE)
        conn.commit()
        cur = conn.cursor()
        for row in df.itertuples(index=False):
            values = [
                row.year, row.month, row.day, row.carrier, row.flight, row.origin, row.dest,
                row.tailnum, row.sched_dep.to_pydatetime(), row.dep_delay, row.arr_delay,
                row.distance, row.cancelled, row.temp, row.humid, row.wind_speed,
            ]  # fmt: skip
            values = [None if isinstance(v, float) and v != v else v for v in values]
            cur.execute(INSERT, values)
            conn.commit()


def run_naive(settings: Settings, sample: int) -> dict[str, Any]:
    """Time the naive pipeline on the first ``sample`` flights of 2013; extrapolate."""
    flights = source.load_table("flights").head(sample)
    # What a tutorial sends: the source row as a dict (pandas NaN becomes JSON NaN).
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in flights.to_dict("records")
    ]
    # Read once, untimed: extrapolating a one-off CSV read per flight would inflate the baseline.
    weather = source.load_table("weather")
    topic = settings.topic("naive-flights")
    _create_topic(settings, topic, 1)
    steps: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        _produce(settings, topic, records)
        steps["produce"] = time.perf_counter() - t0
        say(f"  naive: produced {sample:,} in {steps['produce']:.2f} s")
        t0 = time.perf_counter()
        rows = _consume(settings, topic, sample)
        steps["consume"] = time.perf_counter() - t0
        if len(rows) != sample:
            raise RuntimeError(f"naive consumer got {len(rows)} of {sample} messages")
        t0 = time.perf_counter()
        frame = _transform(rows, weather)
        steps["transform"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _load(settings.warehouse_dsn, frame)
        steps["load"] = time.perf_counter() - t0
        say(
            f"  naive: consume {steps['consume']:.2f} s, transform {steps['transform']:.2f} s, "
            f"load {steps['load']:.2f} s"
        )
    finally:
        delete_topic(settings, topic)
    scale = YEAR_FLIGHTS / sample
    sample_total = sum(steps.values())
    return {
        "sample_flights": sample,
        "scale_to_year": round(scale, 2),
        "sample_seconds": {k: round(v, 3) for k, v in steps.items()},
        "sample_total_seconds": round(sample_total, 3),
        "year_seconds_extrapolated": {k: round(v * scale, 1) for k, v in steps.items()},
        "year_total_seconds_extrapolated": round(sample_total * scale, 1),
    }
