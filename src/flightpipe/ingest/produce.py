"""Producers: one role per process (a flights origin, weather, or the reference tables).

Events are built and JSON-encoded up front, then handed to librdkafka in a tight loop;
librdkafka batches, compresses and retries (idempotently, so retries never duplicate).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

import msgspec
from confluent_kafka import KafkaError, Message, Producer

from flightpipe import source
from flightpipe.contract.events import ORIGINS, Event
from flightpipe.ingest import FLIGHT_ROLES, ROLES, kafka_clients, procs
from flightpipe.ingest.topics import IngestError, ensure_topics
from flightpipe.settings import Settings, get_settings
from flightpipe.source import ReplayClock, ReplaySlice

log = logging.getLogger(__name__)

PROGRESS_EVERY: Final = 2.0


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
    """Counts delivery reports; the callback runs inside poll()/flush() on this thread."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: str | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = str(err)


def send(
    settings: Settings,
    role: str,
    batches: Sequence[tuple[str, Sequence[Event]]],
    speed: float | None = None,
) -> ProduceResult:
    """Produce events (per full topic name) and wait for every delivery report.

    With ``speed`` the events are paced by their ``event_time`` (``speed`` event seconds per
    wall second); without, as fast as the broker takes them. Raises IngestError when any
    message was not delivered.
    """
    producer = kafka_clients.producer(settings, producer_id(role), **PRODUCER_TUNING)
    delivery = Delivery()
    encode = msgspec.json.Encoder().encode
    clock = ReplayClock(speed)
    total = sum(len(events) for _, events in batches)
    started = last_report = time.monotonic()
    sent = 0
    for topic, events in batches:
        for event in events:
            if clock.paced:
                _wait(producer, clock, getattr(event, "event_time", None))
            key, value = event.key().encode(), encode(event)
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=delivery)
                    break
                except BufferError:
                    # Local queue full: serve delivery reports until librdkafka has room.
                    producer.poll(0.05)
            sent += 1
            if sent % 10_000 == 0:
                producer.poll(0)
                now = time.monotonic()
                if now - last_report >= PROGRESS_EVERY:
                    last_report = now
                    log.info("%s: %d/%d sent (%.0f/s)", role, sent, total, sent / (now - started))
    remaining = producer.flush(kafka_clients.FLUSH_TIMEOUT)
    seconds = time.monotonic() - started
    result = ProduceResult(
        role=role,
        topics=[t for t, _ in batches],
        produced=sent,
        delivered=delivery.delivered,
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


def _wait(producer: Producer, clock: ReplayClock, event_time: datetime | None) -> None:
    if event_time is None:
        return
    delay = clock.delay(event_time)
    while delay > 0:
        # Sleeping in poll() keeps delivery reports flowing while we wait for the clock.
        producer.poll(min(delay, 0.5))
        delay = clock.delay(event_time)


def role_events(
    settings: Settings, role: str, replay: ReplaySlice | None
) -> list[tuple[str, Sequence[Event]]]:
    """The (topic, events) this role produces for a slice (None: the whole year)."""
    role = canonical_role(role)
    pid = producer_id(role)
    if role in FLIGHT_ROLES:
        origin = role.removeprefix("flights-")
        events = source.flight_events(replay, origin, pid, cache=source.cache_dir(settings))
        return [(settings.topic("flights"), events)]
    if role == "weather":
        return [(settings.topic("weather"), source.weather_events(replay, None, pid))]
    if role == "reference":
        # Reference tables are small and compacted: every run re-sends them in full.
        return [
            (settings.topic("airlines"), source.airline_events(pid)),
            (settings.topic("airports"), source.airport_events(pid)),
            (settings.topic("planes"), source.plane_events(pid)),
        ]
    raise ValueError(f"unknown producer role {role!r}; one of {', '.join(ROLES)}")


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
    batches = role_events(settings, role, replay)
    log.info(
        "%s: %d events of %s built in %.1f s",
        role, sum(len(e) for _, e in batches), replay or "2013", time.monotonic() - started,
    )  # fmt: skip
    return send(settings, canonical_role(role), batches, speed)


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
