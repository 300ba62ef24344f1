"""What `flightpipe status` tells about Kafka: brokers, replication health, consumer lag.

Everything is read through one admin client with short timeouts; a broker that is down or
a consumer group that has committed nothing yet is part of the answer, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from flightpipe.ingest import kafka_clients
from flightpipe.ingest.lag import TIMEOUT, PartitionLag, partition_lags
from flightpipe.ingest.topics import topic_specs
from flightpipe.settings import Settings
from flightpipe.stack import kafka


@dataclass(frozen=True)
class BrokerState:
    node: int
    address: str
    up: bool


@dataclass(frozen=True)
class TopicLag:
    topic: str
    end: int  # messages written: the sum of the partitions' end offsets
    lag: int | None  # None: the group has committed nothing on this topic yet


@dataclass
class KafkaSummary:
    brokers: list[BrokerState]
    partitions: int = 0
    under_replicated: int = 0
    lags: list[TopicLag] = field(default_factory=list)
    error: str | None = None


def broker_states(settings: Settings, live: Mapping[int, str]) -> list[BrokerState]:
    """The brokers flightpipe runs (up or not), then any other broker the cluster lists."""
    expected = kafka.node_ids(settings) if settings.local_kafka else []
    states = [BrokerState(n, kafka.broker_address(settings, n), n in live) for n in expected]
    states += [BrokerState(n, addr, True) for n, addr in sorted(live.items()) if n not in expected]
    return states


def under_replicated(topics: Mapping[str, Any], names: Iterable[str]) -> tuple[int, int]:
    """(partitions with a replica out of the ISR, all partitions) of the named topics."""
    parts = [p for n in names if n in topics for p in topics[n].partitions.values()]
    return sum(1 for p in parts if set(p.replicas) - set(p.isrs)), len(parts)


def group_lag(settings: Settings, client: AdminClient, topics: Mapping[str, Any]) -> list[TopicLag]:
    """Per input topic: the partitions' lags summed (None before the group's first commit
    on the topic)."""
    per_topic: dict[str, list[PartitionLag]] = {}
    for part in partition_lags(settings, client, topics):
        per_topic.setdefault(part.topic, []).append(part)
    return [
        TopicLag(
            name,
            sum(p.end for p in parts),
            sum(p.lag for p in parts) if any(p.committed is not None for p in parts) else None,
        )
        for name, parts in per_topic.items()
    ]


def summary(settings: Settings) -> KafkaSummary:
    client = kafka_clients.admin(settings)
    try:
        meta = client.list_topics(timeout=TIMEOUT)
    except KafkaException as exc:
        return KafkaSummary(broker_states(settings, {}), error=f"unreachable: {exc}")
    live = {b.id: f"{b.host}:{b.port}" for b in meta.brokers.values()}
    result = KafkaSummary(broker_states(settings, live))
    names = [s.name for s in topic_specs(settings)]
    result.under_replicated, result.partitions = under_replicated(meta.topics, names)
    try:
        result.lags = group_lag(settings, client, meta.topics)
    except KafkaException as exc:
        result.error = f"consumer lag unavailable: {exc}"
    return result
