"""The two local Kafka modes, 1 broker and 3, as config: no broker, no Java."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pydantic
import pytest

from flightpipe.cli_support import bad_settings
from flightpipe.ingest.topics import topic_specs
from flightpipe.settings import Settings
from flightpipe.stack import kafka, kafka_status, services
from flightpipe.stack.errors import StackError

ROOT = Path(__file__).resolve().parents[2]
INTERNAL_RF = (
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "share.coordinator.state.topic.replication.factor",
    "default.replication.factor",
)
INTERNAL_MIN_ISR = (
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.min.isr",
    "min.insync.replicas",
)


def _settings(tmp_path: Path, brokers: int, **extra: object) -> Settings:
    """Local Kafka on the default ports, whatever the environment says."""
    fields: dict[str, object] = {
        "run_dir": tmp_path,
        "kafka_bootstrap": "",
        "kafka_brokers": brokers,
        "kafka_port": 9092,
        "kafka_controller_port": 9093,
    }
    return Settings(_env_file=None, **(fields | extra))  # type: ignore[call-arg]


def test_single_broker_config_is_unchanged(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 1)
    props = kafka.server_properties(settings)
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert all(props[key] == "1" for key in INTERNAL_RF + INTERNAL_MIN_ISR)
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert kafka.write_config(settings) == [tmp_path / "kafka" / "server.properties"]
    assert kafka.server_command(settings)[-1] == str(tmp_path / "kafka" / "server.properties")


def test_three_brokers_have_their_own_ports_dirs_and_one_quorum(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 3)
    quorum = "127.0.0.1:9093,127.0.0.1:9103,127.0.0.1:9113"
    for node, port in zip((1, 2, 3), (9092, 9102, 9112), strict=True):
        props = kafka.server_properties(settings, node)
        assert props["node.id"] == str(node)
        assert (
            props["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}"
        )
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert props["controller.quorum.bootstrap.servers"] == quorum
        assert props["log.dirs"] == str(tmp_path / "kafka" / f"broker-{node}" / "data")
        assert all(props[key] == "3" for key in INTERNAL_RF)
        assert all(props[key] == "2" for key in INTERNAL_MIN_ISR)
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9102,127.0.0.1:9112"
    written = kafka.write_config(settings)
    assert written == [tmp_path / "kafka" / f"broker-{n}" / "server.properties" for n in (1, 2, 3)]
    assert "node.id=3\n" in written[2].read_text()


def test_initial_controllers_name_every_node_with_a_kept_directory_id(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 3)
    ids = kafka.quorum_ids(settings)
    assert kafka.quorum_ids(settings) == ids, "a second format must reuse the same ids"
    assert len(set(ids.values())) == 4
    entries = kafka.initial_controllers(settings, ids).split(",")
    assert entries == [
        f"{n}@127.0.0.1:{9093 + 10 * (n - 1)}:{ids[f'directory.id.{n}']}" for n in (1, 2, 3)
    ]


def test_random_uuid_is_a_kafka_uuid() -> None:
    for _ in range(200):
        value = kafka.random_uuid()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", value) and not value.startswith("-")


@pytest.mark.parametrize(("brokers", "old"), [(3, "data"), (1, "broker-1")])
def test_switching_modes_on_old_data_says_what_to_do(
    tmp_path: Path, brokers: int, old: str
) -> None:
    (tmp_path / "kafka" / old).mkdir(parents=True)
    with pytest.raises(StackError, match=r"`make clean`.*move .* aside") as caught:
        kafka.format_storage(_settings(tmp_path, brokers))
    assert "\n" not in str(caught.value)


def test_overlapping_ports_are_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 3, kafka_controller_port=9102)
    with pytest.raises(StackError, match="FLIGHTPIPE_KAFKA_CONTROLLER_PORT=9102"):
        kafka.write_config(settings)


def test_broker_count_is_one_or_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIGHTPIPE_KAFKA_BROKERS", "3")
    assert Settings(_env_file=None).kafka_brokers == 3  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(kafka_brokers=2)
    assert bad_settings(caught.value) == (
        "error: bad setting FLIGHTPIPE_KAFKA_BROKERS=2: 2 brokers is not supported; use 1 or 3"
    )


def test_bad_broker_count_is_one_line_from_the_command_line() -> None:
    exe = Path(sys.executable).with_name("flightpipe")
    env = {**os.environ, "FLIGHTPIPE_KAFKA_BROKERS": "2"}
    result = subprocess.run(
        [str(exe), "config"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "FLIGHTPIPE_KAFKA_BROKERS=2" in result.stderr


def test_supervisor_programs_and_clash_ports_per_mode(tmp_path: Path) -> None:
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow")}
    single = _settings(tmp_path, 1, airflow_admin_password="x")
    assert [p.name for p in services.programs(single, env) if p.name.startswith("kafka")] == [
        "kafka"
    ]
    assert services.ports(single)["kafka"] == [
        (9092, "FLIGHTPIPE_KAFKA_PORT"),
        (9093, "FLIGHTPIPE_KAFKA_CONTROLLER_PORT"),
    ]
    three = _settings(tmp_path, 3, airflow_admin_password="x")
    progs = {p.name: p for p in services.programs(three, env) if p.name.startswith("kafka")}
    assert list(progs) == ["kafka-1", "kafka-2", "kafka-3"]
    assert progs["kafka-2"].command[-1].endswith("broker-2/server.properties")
    ports = services.ports(three)
    assert "kafka" not in ports
    assert [port for n in (1, 2, 3) for port, _ in ports[f"kafka-{n}"]] == [
        9092, 9093, 9102, 9103, 9112, 9113,
    ]  # fmt: skip


def test_topic_replication_follows_the_broker_count(tmp_path: Path) -> None:
    for spec in topic_specs(_settings(tmp_path, 1)):
        assert spec.replication_factor == 1
        assert "min.insync.replicas" not in spec.config
    specs = topic_specs(_settings(tmp_path, 3))
    for spec in specs:
        assert spec.replication_factor == 3
        assert spec.config["min.insync.replicas"] == "2"
    compacted = [s for s in specs if s.config.get("cleanup.policy") == "compact"]
    assert compacted, "the replication config is added to, not instead of, the topic's own"


def _partition(replicas: list[int], isrs: list[int]) -> SimpleNamespace:
    return SimpleNamespace(replicas=replicas, isrs=isrs)


def test_under_replicated_counts_replicas_out_of_the_isr() -> None:
    topics = {
        "flights": SimpleNamespace(
            partitions={0: _partition([1, 2, 3], [1, 2, 3]), 1: _partition([2, 3, 1], [2, 1])}
        ),
        "other": SimpleNamespace(partitions={0: _partition([1, 2, 3], [1])}),
    }
    assert kafka_status.under_replicated(topics, ["flights", "weather"]) == (1, 2)


def test_broker_states_show_down_brokers_of_the_local_cluster(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 3)
    states = kafka_status.broker_states(settings, {1: "127.0.0.1:9092", 3: "127.0.0.1:9112"})
    assert [(b.node, b.address, b.up) for b in states] == [
        (1, "127.0.0.1:9092", True),
        (2, "127.0.0.1:9102", False),
        (3, "127.0.0.1:9112", True),
    ]
    external = Settings(_env_file=None, kafka_bootstrap="10.0.0.9:9092")  # type: ignore[call-arg]
    states = kafka_status.broker_states(external, {7: "10.0.0.9:9092"})
    assert [(b.node, b.up) for b in states] == [(7, True)]
