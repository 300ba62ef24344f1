"""Topic layout and admin: created by code, idempotently; offsets for reconciliation."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from flightpipe.contract import ENTITIES, TOPICS, partitions
from flightpipe.ingest import kafka_clients
from flightpipe.ingest.kafka_clients import ADMIN_TIMEOUT
from flightpipe.live.notices import NOTICES_RETENTION_MS, NOTICES_TOPIC
from flightpipe.settings import Settings
from flightpipe.waiting import poll, retry_transient

log = logging.getLogger(__name__)

INPUT_TOPICS: Final = TOPICS
DLQ_SUFFIX: Final = ".dlq"
_LEADERSHIP_ERRORS: Final = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
    }
)


class IngestError(RuntimeError):
    """Ingestion cannot go on; the message says why and what to check."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def full_name(settings: Settings, topic: str) -> str:
    """The topic name on the broker; a name that already carries the prefix is kept."""
    prefix = settings.topic_prefix
    return topic if prefix and topic.startswith(prefix) else settings.topic(topic)


def replication_config(settings: Settings) -> dict[str, str]:
    """Per-topic replication settings beyond the replica count (none with one broker).

    Set on the topic rather than left to the broker default, so an external cluster whose
    default is 1 still refuses acks=all writes that only one replica has.
    """
    if settings.replication_factor == 1:
        return {}
    return {"min.insync.replicas": str(settings.min_insync_replicas)}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the pipeline, with the prefix of ``settings`` applied."""
    replicas, replication = settings.replication_factor, replication_config(settings)
    specs = []
    for base, entity in ENTITIES.items():
        name = settings.topic(base)
        config = {"cleanup.policy": "compact"} if entity.compacted else {}
        specs.append(TopicSpec(name, partitions(entity, settings), config | replication, replicas))
        # A DLQ is never compacted: a poison message may have no key at all.
        dlq_config = {"cleanup.policy": "delete"} | replication
        specs.append(TopicSpec(dlq_topic(name), 1, dlq_config, replicas))
    notices_config = {"cleanup.policy": "delete", "retention.ms": str(NOTICES_RETENTION_MS)}
    specs.append(
        TopicSpec(settings.topic(NOTICES_TOPIC), 1, notices_config | replication, replicas)
    )
    return specs


def admin(settings: Settings) -> AdminClient:
    return kafka_clients.admin(settings)


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; returns the names created. Safe to run any number of times."""
    client = admin(settings)
    specs = topic_specs(settings)
    existing = client.list_topics(timeout=ADMIN_TIMEOUT).topics
    missing = [s for s in specs if s.name not in existing]
    created: list[str] = []
    if missing:
        futures = client.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    config=s.config,
                )
                for s in missing
            ],
            operation_timeout=ADMIN_TIMEOUT,
            request_timeout=ADMIN_TIMEOUT,
        )
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                # Another process may have created it between our listing and our request.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise IngestError(f"cannot create topic {name}: {exc}") from exc
    _wait_ready(client, [s.name for s in specs])
    _check_partitions(client, specs)
    if created:
        log.info("created topics: %s", ", ".join(sorted(created)))
    return sorted(created)


def _wait_ready(client: AdminClient, names: list[str]) -> None:
    # A new topic is listed before its partitions have leaders; clients that touch it in
    # that window get NOT_LEADER errors.
    def pending() -> list[str]:
        topics = client.list_topics(timeout=ADMIN_TIMEOUT).topics
        return [
            n
            for n in names
            if n not in topics
            or topics[n].error is not None
            or any(p.leader < 0 or p.error is not None for p in topics[n].partitions.values())
        ]

    left = poll(pending, until=lambda p: not p, timeout=ADMIN_TIMEOUT, interval=0.2)
    if left:
        raise IngestError(f"topics not ready after {ADMIN_TIMEOUT:.0f} s: {left}")


def _check_partitions(client: AdminClient, specs: list[TopicSpec]) -> None:
    # More partitions would silently move keys to other partitions and break per-key order
    # and the max-offset dedupe, so a mismatch is reported, never "fixed".
    topics = client.list_topics(timeout=ADMIN_TIMEOUT).topics
    for spec in specs:
        have = len(topics[spec.name].partitions) if spec.name in topics else 0
        if have != spec.partitions:
            raise IngestError(
                f"topic {spec.name} has {have} partitions, settings want {spec.partitions}; "
                "use a new topic prefix or delete the topic"
            )


def delete_topics(settings: Settings) -> list[str]:
    """Delete every topic of ``settings`` (test and demo cleanup); returns those deleted."""
    client = admin(settings)
    existing = client.list_topics(timeout=ADMIN_TIMEOUT).topics
    names = [s.name for s in topic_specs(settings) if s.name in existing]
    if not names:
        return []
    for future in client.delete_topics(names, operation_timeout=ADMIN_TIMEOUT).values():
        future.result()
    return names


def delete_consumer_group(settings: Settings) -> bool:
    """Delete ``settings.consumer_group`` (test and demo cleanup); False when there was none.

    A group that never committed does not exist, and one with live members cannot be
    deleted: both are answered with an error, which here means nothing was deleted.
    """
    client = admin(settings)  # kept referenced: its futures resolve only while it exists
    futures = client.delete_consumer_groups([settings.consumer_group], request_timeout=30)
    try:
        for future in futures.values():
            future.result(timeout=ADMIN_TIMEOUT * 2)
    except KafkaException:
        return False
    return True


def partitions_of(settings: Settings, topic: str) -> list[int]:
    """Partition ids of a full topic name."""
    meta = admin(settings).list_topics(topic, timeout=ADMIN_TIMEOUT).topics.get(topic)
    if meta is None or meta.error is not None:
        raise IngestError(f"topic {topic} not found at {settings.kafka_bootstrap}")
    return sorted(meta.partitions)


def _offsets_consumer(settings: Settings) -> Consumer:
    return kafka_clients.consumer(settings, settings.consumer_group)


def watermarks(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """Partition -> (low, high) watermarks of a topic given without its prefix."""
    return watermarks_of(settings, [topic])[topic]


def watermarks_of(
    settings: Settings, topics: Iterable[str]
) -> dict[str, dict[int, tuple[int, int]]]:
    """:func:`watermarks` of several topics, through one client."""
    consumer = _offsets_consumer(settings)
    try:
        meta = consumer.list_topics(timeout=ADMIN_TIMEOUT).topics
        out = {}
        for topic in topics:
            full = full_name(settings, topic)
            found = meta.get(full)
            if found is None or found.error is not None:
                raise IngestError(f"topic {full} not found at {settings.kafka_bootstrap}")
            out[topic] = {p: _watermark(consumer, full, p) for p in sorted(found.partitions)}
        return out
    finally:
        consumer.close()


class _LeadershipMoved(Exception):
    """A watermark request met a transient leadership change (new topic, broker restart)."""


def _watermark(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    def ask() -> tuple[int, int]:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=ADMIN_TIMEOUT
            )
        except KafkaException as exc:
            if exc.args[0].retriable() or exc.args[0].code() in _LEADERSHIP_ERRORS:
                raise _LeadershipMoved(str(exc)) from exc
            raise
        return int(low), int(high)

    try:
        return retry_transient(
            ask, on=(_LeadershipMoved,), attempts=60, timeout=ADMIN_TIMEOUT, max_wait=1.0
        )
    except _LeadershipMoved as exc:
        raise IngestError(f"watermarks of {topic}[{partition}]: {exc}") from None


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> high watermark (the next offset to be written); topic without prefix."""
    return {p: high for p, (_, high) in watermarks(settings, topic).items()}


def committed_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> offset committed by ``settings.consumer_group``, -1 when none.

    ``topic`` is given without its prefix. Reconciliation: once a batch run is over,
    committed == end offset, and ``end - low`` = landed rows + DLQ messages (+ compaction).
    """
    return committed_offsets_of(settings, [topic])[topic]


def committed_offsets_of(settings: Settings, topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """:func:`committed_offsets` of several topics, with one client and one request each
    for their partitions and their offsets."""
    names = {topic: full_name(settings, topic) for topic in topics}
    consumer = _offsets_consumer(settings)
    try:
        meta = consumer.list_topics(timeout=ADMIN_TIMEOUT).topics
        tps = []
        for full in names.values():
            found = meta.get(full)
            if found is None or found.error is not None:
                raise IngestError(f"topic {full} not found at {settings.kafka_bootstrap}")
            tps += [TopicPartition(full, p) for p in sorted(found.partitions)]
        offsets: dict[str, dict[int, int]] = {full: {} for full in names.values()}
        for tp in _committed(consumer, tps) if tps else []:
            offsets[tp.topic][tp.partition] = max(tp.offset, -1)
    finally:
        consumer.close()
    return {topic: offsets[full] for topic, full in names.items()}


def _committed(consumer: Consumer, tps: list[TopicPartition]) -> list[TopicPartition]:
    result: list[TopicPartition] = consumer.committed(tps, timeout=ADMIN_TIMEOUT)
    for tp in result:
        if tp.error is not None:
            raise IngestError(f"committed offset of {tp.topic}[{tp.partition}]: {tp.error}")
    return result
