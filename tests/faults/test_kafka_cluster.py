"""The 3-broker mode under a fault: a broker SIGKILLed while a whole year is produced.

A private cluster is formatted and started by the stack's own code (the config and format
functions `flightpipe up` uses), on free loopback ports and in a temporary folder that is
removed afterwards together with the brokers. Nothing touches the shared stack.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from flightpipe.ingest import ROLES, kafka_clients
from flightpipe.ingest.produce import role_outboxes, send
from flightpipe.ingest.topics import end_offsets, ensure_topics, topic_specs
from flightpipe.settings import KAFKA_PORT_STEP, Settings
from flightpipe.stack import health, kafka, kafka_status
from flightpipe.stack.ports import port_is_free
from flightpipe.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

# Long enough for the producer to be well into the year, short enough to be mid-stream.
KILL_AFTER = 1.0
START_TIMEOUT = 120.0


def _free_base_port() -> int:
    """A port whose broker and controller ports, for all three nodes, are free."""
    candidates = list(range(19000, 19990 - 2 * KAFKA_PORT_STEP, 2))
    random.shuffle(candidates)
    for base in candidates:
        ports = [base + KAFKA_PORT_STEP * i + c for i in range(3) for c in (0, 1)]
        if all(port_is_free(p) for p in ports):
            return base
    raise RuntimeError("no free ports for a private Kafka cluster in 19000-19999")


@dataclass
class Cluster:
    settings: Settings
    root: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed_at: float | None = None

    def kill(self, node: int) -> None:
        self.procs[node].send_signal(signal.SIGKILL)
        self.killed_at = time.monotonic()

    def logs(self) -> str:
        return "\n".join(
            f"--- broker {n}:\n" + "\n".join(p.read_text().splitlines()[-15:])
            for n, p in sorted((n, self.root / f"kafka-{n}.log") for n in self.procs)
            if p.exists()
        )


def _private_settings(root: Path) -> Settings:
    base = _free_base_port()
    token = uuid.uuid4().hex[:8]
    return Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init-only option
        run_dir=root / "run",
        data_dir=root / "data",
        kafka_bootstrap="",  # the local brokers, whatever the environment says
        kafka_brokers=3,
        kafka_port=base,
        kafka_controller_port=base + 1,
        kafka_heap="384m",
        topic_prefix=f"fault-{token}-",
        consumer_group=f"fault-{token}",
    )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="flightpipe-kafka-cluster-"))
    running = Cluster(_private_settings(root), root)
    settings = running.settings
    try:
        kafka.require_java()
        kafka.install_jars(settings)
        kafka.format_storage(settings)
        for node in kafka.node_ids(settings):
            with open(root / f"kafka-{node}.log", "wb") as log:
                running.procs[node] = subprocess.Popen(
                    kafka.server_command(settings, node), stdout=log, stderr=subprocess.STDOUT
                )
        up = health.wait_healthy("kafka", lambda: kafka.probe(settings), START_TIMEOUT)
        assert up.ok, f"private cluster did not start: {up.detail}\n{running.logs()}"
        yield running
    finally:
        # The data goes with the folder, so the brokers need no clean shutdown.
        for proc in running.procs.values():
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _leader_of_first_flights_partition(settings: Settings) -> int:
    topic = settings.topic("flights")
    meta = kafka_clients.admin(settings).list_topics(topic, timeout=10)
    return int(meta.topics[topic].partitions[0].leader)


def _assert_replicated(settings: Settings) -> None:
    """Every topic on the brokers has 3 replicas per partition and min ISR 2."""
    admin = kafka_clients.admin(settings)
    topics = admin.list_topics(timeout=10).topics
    names = [spec.name for spec in topic_specs(settings)]
    for name in names:
        replicas = {len(p.replicas) for p in topics[name].partitions.values()}
        assert replicas == {3}, f"{name}: replicas {replicas}"
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources).items():
        min_isr = future.result(timeout=10)["min.insync.replicas"]
        assert min_isr.value == "2" and not min_isr.is_default, resource


def test_broker_killed_while_producing_loses_nothing(cluster: Cluster, nyc: Any) -> None:
    settings = cluster.settings
    ensure_topics(settings)
    _assert_replicated(settings)
    batches = [box for role in ROLES for box in role_outboxes(settings, role, None)]
    victim = _leader_of_first_flights_partition(settings)

    killer = threading.Timer(KILL_AFTER, cluster.kill, args=(victim,))
    started = time.monotonic()
    killer.start()
    try:
        # One call, no retry around it: acks=all and idempotence must ride out the failover.
        result = send(settings, "fault-test", batches)
    finally:
        killer.cancel()
        killer.join()
    finished = time.monotonic()
    assert cluster.killed_at is not None and cluster.killed_at < finished, (
        "the broker was not killed while producing; lower KILL_AFTER"
    )
    print(
        f"\nbroker {victim} killed {cluster.killed_at - started:.1f} s into producing; "
        f"{result.delivered:,} delivered in {result.seconds:.1f} s"
    )

    assert result.failed == 0, result.first_error
    assert result.delivered == result.produced == sum(map(len, batches))
    assert sum(end_offsets(settings, "flights").values()) == len(nyc.flights) == 336_776
    assert sum(end_offsets(settings, "weather").values()) == len(nyc.weather)

    def degraded() -> kafka_status.KafkaSummary | None:
        # The controller fences the dead broker after its session times out; until then it
        # is still listed and in every ISR.
        summary = kafka_status.summary(settings)
        down = [b.node for b in summary.brokers if not b.up]
        full = summary.partitions and summary.under_replicated == summary.partitions
        return summary if down == [victim] and full else None

    summary = wait_until(degraded, what="the status to show the dead broker", timeout=30)
    assert summary.partitions == sum(s.partitions for s in topic_specs(settings))
    # The landing group has not run: its lag is reported as nothing committed yet.
    assert summary.lags and all(t.lag is None for t in summary.lags), summary.lags
    assert summary.error is None
