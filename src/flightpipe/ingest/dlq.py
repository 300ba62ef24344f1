"""The dead-letter topics: list, show and replay what the consumers refused.

Each dead letter keeps the original key and value, with the reason and the source topic,
partition and offset in its headers. A replay re-produces an event onto its source topic
(optionally with its value replaced by a fixed one); the consumers then take it like any
other event, and a replayed event that is still invalid simply goes back to the DLQ.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from confluent_kafka import Consumer, TopicPartition

from flightpipe.contract import TOPICS
from flightpipe.ingest import kafka_clients
from flightpipe.ingest.kafka_clients import ADMIN_TIMEOUT, FLUSH_TIMEOUT
from flightpipe.ingest.produce import PRODUCER_TUNING
from flightpipe.ingest.topics import IngestError, dlq_topic
from flightpipe.settings import Settings

POLL_SECONDS: Final = 5.0


@dataclass(frozen=True)
class DeadLetter:
    topic: str  # logical source topic
    dlq_offset: int
    source_partition: int
    source_offset: int
    reason: str
    key: bytes | None
    value: bytes | None


def _reader(settings: Settings) -> Consumer:
    # Reads by assignment only: no group membership, nothing committed.
    return kafka_clients.consumer(settings, f"{settings.consumer_group}-dlq-reader")


def dead_letters(settings: Settings, topic: str) -> Iterator[DeadLetter]:
    """Every dead letter of ``topic`` (logical name), oldest first."""
    if topic not in TOPICS:
        raise IngestError(f"unknown topic {topic!r}; use one of {', '.join(TOPICS)}")
    consumer = _reader(settings)
    try:
        tp = TopicPartition(dlq_topic(settings.topic(topic)), 0)
        low, high = consumer.get_watermark_offsets(tp, timeout=ADMIN_TIMEOUT)
        if high <= low:
            return
        consumer.assign([TopicPartition(tp.topic, 0, low)])
        position = low
        while position < high:
            batch = consumer.consume(500, timeout=POLL_SECONDS)
            if not batch:
                raise IngestError(f"{tp.topic}: no message at offset {position} of {high}")
            for msg in batch:
                if msg.error() is not None:
                    continue
                raw = msg.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                headers = {
                    k: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v or "")
                    for k, v in pairs
                }
                offset = msg.offset() or 0
                position = offset + 1
                yield DeadLetter(
                    topic,
                    offset,
                    int(headers.get("source_partition", -1)),
                    int(headers.get("source_offset", -1)),
                    headers.get("error", ""),
                    msg.key(),
                    msg.value(),
                )
    finally:
        consumer.close()


def counts(settings: Settings, timeout: float = 5.0) -> dict[str, int]:
    """Dead letters held per topic (logical name): end minus earliest offset of its DLQ,
    0 for a DLQ topic not created yet. One watermark request per topic, nothing read."""
    existing = kafka_clients.admin(settings).list_topics(timeout=timeout).topics
    consumer = _reader(settings)
    try:
        held = {}
        for topic in TOPICS:
            tp = TopicPartition(dlq_topic(settings.topic(topic)), 0)
            if tp.topic not in existing:
                held[topic] = 0
                continue
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            held[topic] = max(high - low, 0)
        return held
    finally:
        consumer.close()


def find(settings: Settings, topic: str, dlq_offset: int) -> DeadLetter:
    for letter in dead_letters(settings, topic):
        if letter.dlq_offset == dlq_offset:
            return letter
    raise IngestError(f"no dead letter at offset {dlq_offset} of {topic}.dlq")


def replay(
    settings: Settings, letters: list[DeadLetter], value: bytes | None = None
) -> list[tuple[int, int]]:
    """Re-produce ``letters`` onto their source topics (with ``value`` instead of theirs
    when given); returns the (partition, offset) each landed at."""
    producer = kafka_clients.producer(settings, "dlq-replay", **PRODUCER_TUNING)
    placed: list[tuple[int, int]] = []
    errors: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            placed.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    for letter in letters:
        payload = value if value is not None else letter.value
        producer.produce(settings.topic(letter.topic), payload, letter.key, on_delivery=on_delivery)
    if producer.flush(FLUSH_TIMEOUT) > 0 or errors:
        raise IngestError(f"replay not delivered: {errors or 'timed out'}")
    return placed
