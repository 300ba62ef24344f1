"""What `flightpipe status` tells about Kafka: brokers, replication health, consumer lag.

Everything is read through one admin client with short timeouts; a broker that is down or
a consumer group that has committed nothing yet is part of the answer, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from flightpipe.ingest import kafka_clients
from flightpipe.ingest.topics import INPUT_TOPICS, topic_specs
from flightpipe.settings import Settings
from flightpipe.stack import kafka

TIMEOUT = 5.0


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


def _offsets(client: AdminClient, tps: list[TopicPartition], spec: OffsetSpec) -> dict[Any, int]:
    futures = client.list_offsets({tp: spec for tp in tps}, request_timeout=TIMEOUT)
    return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}


def _committed(client: AdminClient, group: str, tps: list[TopicPartition]) -> dict[Any, int]:
    request = [ConsumerGroupTopicPartitions(group, tps)]
    future = client.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group]
    # A group that does not exist yet answers with no offset (negative) for every partition.
    return {(tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions}


def group_lag(settings: Settings, client: AdminClient, topics: Mapping[str, Any]) -> list[TopicLag]:
    """Per input topic: end offset minus the landing group's committed offset.

    A partition without a commit counts from its earliest offset, where the group's
    consumers would start (``auto.offset.reset=earliest``).
    """
    names = [settings.topic(t) for t in INPUT_TOPICS if settings.topic(t) in topics]
    tps = [TopicPartition(n, p) for n in names for p in sorted(topics[n].partitions)]
    if not tps:
        return []
    end = _offsets(client, tps, OffsetSpec.latest())
    start = _offsets(client, tps, OffsetSpec.earliest())
    committed = _committed(client, settings.consumer_group, tps)
    lags = []
    for name in names:
        keys = [k for k in end if k[0] == name]
        done = [committed.get(k, -1) for k in keys]
        lag = None
        if any(c >= 0 for c in done):
            lag = sum(end[k] - (c if c >= 0 else start[k]) for k, c in zip(keys, done, strict=True))
        lags.append(TopicLag(name, sum(end[k] for k in keys), lag))
    return lags


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
