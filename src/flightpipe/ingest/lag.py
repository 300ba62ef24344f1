"""The landing group's lag per partition: end offset minus committed offset.

Read through one admin client with short timeouts, for `flightpipe status` (summed per topic
there) and the dashboard (per partition). Nothing is consumed or committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from flightpipe.ingest import kafka_clients
from flightpipe.ingest.topics import INPUT_TOPICS
from flightpipe.settings import Settings

TIMEOUT: Final = 5.0


def _offsets(client: AdminClient, tps: list[TopicPartition], spec: OffsetSpec) -> dict[Any, int]:
    futures = client.list_offsets({tp: spec for tp in tps}, request_timeout=TIMEOUT)
    return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}


def _committed(client: AdminClient, group: str, tps: list[TopicPartition]) -> dict[Any, int]:
    request = [ConsumerGroupTopicPartitions(group, tps)]
    future = client.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group]
    # A group that does not exist yet answers with no offset (negative) for every partition.
    return {(tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions}


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int  # the partition's end offset: the next offset to be written
    committed: int | None  # None: the group has committed nothing on this partition
    lag: int  # end minus committed, or minus the earliest offset without a commit


def partition_lags(
    settings: Settings, client: AdminClient, topics: Mapping[str, Any]
) -> list[PartitionLag]:
    """Per partition of every input topic: end offset minus the landing group's commit.

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
    for tp in tps:
        key = (tp.topic, tp.partition)
        done = committed.get(key, -1)
        base = done if done >= 0 else start[key]
        lags.append(
            PartitionLag(
                tp.topic, tp.partition, end[key], done if done >= 0 else None, end[key] - base
            )
        )
    return lags


def lag_by_partition(settings: Settings) -> list[PartitionLag]:
    """:func:`partition_lags` with a client of its own (dashboards); raises KafkaException
    when the cluster does not answer."""
    client = kafka_clients.admin(settings)
    return partition_lags(settings, client, client.list_topics(timeout=TIMEOUT).topics)
