"""Producers: one role per process (a flights origin, weather, or the reference tables).

Events come wire-ready (``ingest/wire.py``: key and JSON value, encoded once per source
release) and are handed to librdkafka in a tight loop; librdkafka batches, compresses and
retries (idempotently, so retries never duplicate).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from flightpipe.contract.events import ORIGINS
from flightpipe.ingest import ROLES, kafka_clients, procs, wire
from flightpipe.ingest.topics import IngestError, ensure_topics
from flightpipe.ingest.wire import Outbox
from flightpipe.replay import ReplayClock, ReplaySlice
from flightpipe.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class ProduceResult:
    role: str
    topics: list[str]
    produced: int
    delivered: int
    failed: int
    seconds: float
    first_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Throughput settings of the pipeline's producers; connection and auth come from kafka_clients.
PRODUCER_TUNING: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 50,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    # Same key -> partition mapping as the Java clients, so any producer agrees.
    "partitioner": "murmur2_random",
    # A message not acknowledged by then fails its delivery report and frees its queue slot,
    # so the BufferError wait in send() and the final flush are bounded.
    "delivery.timeout.ms": 120_000,
}


def producer_id(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


class Delivery:
    """Counts failed deliveries; the callback runs inside poll()/flush() on this thread.

    The producers ask librdkafka for error reports only (a Python call per delivered message
    costs as much CPU as producing it): every message gets exactly one report, so once
    flush() has nothing left, whatever did not fail was delivered.
    """

    def __init__(self) -> None:
        self.failed = 0
        self.first_error: str | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = str(err)

    def config(self) -> dict[str, Any]:
        """Producer settings that route the reports here."""
        return {"on_delivery": self, "delivery.report.only.error": True}


def send(
    settings: Settings, role: str, outboxes: Sequence[Outbox], speed: float | None = None
) -> ProduceResult:
    """Produce the outboxes' events and wait for every delivery report.

    With ``speed`` the events are paced by their event time (``speed`` event seconds per
    wall second); without, as fast as the broker takes them. Raises IngestError when any
    message was not delivered.
    """
    delivery = Delivery()
    producer = kafka_clients.producer(
        settings, producer_id(role), **PRODUCER_TUNING, **delivery.config()
    )
    clock = ReplayClock(speed)
    total = sum(len(box) for box in outboxes)
    started = time.monotonic()
    sent = 0
    for box in outboxes:
        if clock.paced:
            sent += _send_paced(producer, box, clock)
            continue
        sent += _send_box(producer, box)
        log.info("%s: %d/%d sent (%.0f/s)", role, sent, total, sent / (time.monotonic() - started))
    remaining = producer.flush(kafka_clients.FLUSH_TIMEOUT)
    seconds = time.monotonic() - started
    result = ProduceResult(
        role=role,
        topics=[box.topic for box in outboxes],
        produced=sent,
        delivered=sent - delivery.failed - remaining,
        failed=delivery.failed + remaining,
        seconds=round(seconds, 3),
        first_error=delivery.first_error or (f"{remaining} undelivered" if remaining else None),
    )
    if result.failed or result.delivered != result.produced:
        raise IngestError(
            f"producer {role}: {result.failed} of {result.produced} messages failed "
            f"({result.first_error})"
        )
    log.info("%s: %d delivered in %.1f s", role, result.delivered, seconds)
    return result


def _send_box(producer: Producer, box: Outbox) -> int:
    """Hand every event of ``box`` to librdkafka, which batches, compresses and retries."""
    produce, topic = producer.produce, box.topic
    for key, value in zip(box.keys, box.values, strict=True):
        try:
            produce(topic, value, key)
        except BufferError:
            _produce_when_room(producer, topic, key, value)
    return len(box)


def _produce_when_room(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        # Local queue full: serve delivery reports until librdkafka has room.
        producer.poll(0.05)
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            continue


def _send_paced(producer: Producer, box: Outbox, clock: ReplayClock) -> int:
    for key, value, at in zip(box.keys, box.values, box.event_ms, strict=True):
        if at:
            _wait(producer, clock, wire.event_time(at))
        try:
            producer.produce(box.topic, value, key)
        except BufferError:
            _produce_when_room(producer, box.topic, key, value)
    return len(box)


def _wait(producer: Producer, clock: ReplayClock, event_time: datetime) -> None:
    delay = clock.delay(event_time)
    while delay > 0:
        # Sleeping in poll() keeps delivery reports flowing while we wait for the clock.
        producer.poll(min(delay, 0.5))
        delay = clock.delay(event_time)


def role_outboxes(settings: Settings, role: str, replay: ReplaySlice | None) -> list[Outbox]:
    """What this role sends for a slice (None: the whole year), per topic, in event order."""
    role = canonical_role(role)
    start, end = (None, None) if replay is None else (replay.start, replay.end)
    return wire.outboxes(settings, role, producer_id(role), start, end)


def canonical_role(role: str) -> str:
    """``EWR`` is accepted for ``flights-EWR``."""
    return f"flights-{role}" if role in ORIGINS else role


def produce_role(
    role: str,
    replay: ReplaySlice | None = None,
    speed: float | None = None,
    settings: Settings | None = None,
) -> ProduceResult:
    """Produce one role's slice in this process (an Airflow mapped task calls this)."""
    settings = settings or get_settings()
    started = time.monotonic()
    outboxes = role_outboxes(settings, role, replay)
    log.info(
        "%s: %d events of %s ready in %.2f s",
        role, sum(map(len, outboxes)), replay or "2013", time.monotonic() - started,
    )  # fmt: skip
    return send(settings, canonical_role(role), outboxes, speed)


def produce_all(
    replay: ReplaySlice | None = None,
    speed: float | None = None,
    roles: Sequence[str] = ROLES,
    settings: Settings | None = None,
    timeout: float = 600.0,
) -> list[ProduceResult]:
    """Every role at once, one process each; raises IngestError if any of them failed."""
    settings = settings or get_settings()
    ensure_topics(settings)
    roles = [canonical_role(r) for r in roles]
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown producer roles {sorted(unknown)}; use {', '.join(ROLES)}")
    children = [procs.spawn(settings, role_args(role, replay, speed)) for role in roles]
    outcomes = procs.wait_all(children, timeout)
    failed = [o for o in outcomes if o.returncode != 0 or o.result is None]
    if failed:
        raise IngestError(
            "producers failed: " + "; ".join(f"{o.args[-1]} exit {o.returncode}" for o in failed)
        )
    return [ProduceResult(**o.result) for o in outcomes if o.result is not None]


def role_args(role: str, replay: ReplaySlice | None, speed: float | None) -> list[str]:
    args = ["produce", "--in-process", "--role", role]
    if replay is not None:
        args += ["--start", replay.start.isoformat(), "--days", str(replay.days)]
    if speed is not None:
        args += ["--speed", str(speed)]
    return args
