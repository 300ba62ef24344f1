"""Landing notices: one small Kafka message per commit of a landing consumer in live mode.

The consumers write them after the files are durable and the offsets committed; the
``flightpipe_live`` DAG's AssetWatcher reads them (:func:`accept` is its ``apply_function``)
and each accepted notice is an Asset event that starts a load. Notices that arrive while a
load runs queue up as one run: the load takes every file not loaded yet, whichever notice
announced it, so a lost or repeated notice only moves a load earlier or later.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from confluent_kafka import TopicPartition

from flightpipe.ingest import kafka_clients
from flightpipe.settings import Settings

# One message per landing commit, on one partition; a day of them is plenty to look back on.
NOTICES_TOPIC = "landing.notices"
NOTICES_RETENTION_MS = 24 * 3600 * 1000
# The dashboard reads the notices without joining or committing anything under this name.
READER_GROUP = "flightpipe-dashboard"
TIMEOUT = 5.0
# The Airflow connection (set by `flightpipe up`) through which the watcher reads notices.
NOTICES_CONN_ID = "flightpipe_kafka"


class LandedRange(msgspec.Struct, frozen=True):
    topic: str
    partition: int
    first: int
    last: int


class Notice(msgspec.Struct, frozen=True):
    member: str
    files: list[LandedRange]
    landed: int
    committed_at: float  # epoch seconds


def topic(settings: Settings) -> str:
    return settings.topic(NOTICES_TOPIC)


def encode(member: str, files: list[LandedRange], landed: int) -> bytes:
    return msgspec.json.encode(Notice(member, files, landed, round(time.time(), 3)))


def decode(value: bytes) -> Notice:
    return msgspec.json.decode(value, type=Notice)


def accept(message: Any) -> dict[str, Any] | None:
    """The AssetWatcher's test of a message: a well-formed notice becomes the event's payload;
    anything else on the topic is ignored."""
    value = message.value()
    if not value:
        return None
    try:
        notice = decode(value)
    except msgspec.DecodeError:  # ValidationError included
        return None
    return msgspec.to_builtins(notice)


def landed_since(settings: Settings, since: float, topic_name: str = "flights") -> int:
    """Events of ``topic_name`` the landing consumers committed since ``since`` (epoch s),
    summed from their notices; 0 when no notice topic exists (class mode so far)."""
    name = topic(settings)
    reader = kafka_clients.consumer(settings, READER_GROUP)
    try:
        found = reader.list_topics(name, timeout=TIMEOUT).topics.get(name)
        if found is None or found.error is not None:
            return 0
        wanted = [TopicPartition(name, p, int(since * 1000)) for p in found.partitions]
        total = 0
        for start in reader.offsets_for_times(wanted, timeout=TIMEOUT):
            _, end = reader.get_watermark_offsets(start, timeout=TIMEOUT)
            if start.offset < 0 or start.offset >= end:
                continue  # no notice that recent on this partition
            reader.assign([start])
            total += _sum_landed(reader, end - start.offset, topic_name)
        return total
    finally:
        reader.close()


def _sum_landed(reader: Any, count: int, topic_name: str) -> int:
    total = 0
    while count > 0:
        batch = reader.consume(min(count, 500), timeout=TIMEOUT)
        if not batch:
            break  # the rest did not arrive in time: a lower figure, not a wait
        count -= len(batch)
        for message in batch:
            payload = None if message.error() else accept(message)
            if payload is not None:
                files = payload["files"]
                total += sum(f["last"] - f["first"] + 1 for f in files if f["topic"] == topic_name)
    return total
