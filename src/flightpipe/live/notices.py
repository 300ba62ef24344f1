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

from flightpipe.settings import Settings

# One message per landing commit, on one partition; a day of them is plenty to look back on.
NOTICES_TOPIC = "landing.notices"
NOTICES_RETENTION_MS = 24 * 3600 * 1000
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
