"""A single-node Kafka 4 broker in KRaft mode, run from jars resolved out of Maven Central."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from flightpipe.settings import Settings
from flightpipe.stack.errors import StackError

POM = Path(__file__).resolve().parents[3] / "stack" / "kafka" / "pom.xml"


def kafka_dir(settings: Settings) -> Path:
    return settings.run_dir / "kafka"


def libs_dir(settings: Settings) -> Path:
    return settings.home / ".cache" / "kafka-libs"


def require_java() -> None:
    for tool, package in (("java", "openjdk-17-jre-headless"), ("mvn", "maven")):
        if not shutil.which(tool):
            raise StackError(
                f"`{tool}` was not found; the local Kafka broker needs Java 17+ and Maven. "
                f"Install it (apt-get install -y {package}) or point FLIGHTPIPE_KAFKA_BOOTSTRAP "
                "at an existing Kafka cluster."
            )


def install_jars(settings: Settings) -> None:
    libs = libs_dir(settings)
    marker = libs / ".complete"
    if marker.exists() and marker.read_text() == POM.read_text():
        return
    print("Resolving Kafka jars from Maven Central (first start only) ...", flush=True)
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise StackError(f"Maven could not resolve the Kafka jars:\n{tail}")
    marker.write_text(POM.read_text())


def _java(settings: Settings, main_class: str, *args: str) -> list[str]:
    return [
        "java",
        "-Xms128m",
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={kafka_dir(settings) / 'log4j2.properties'}",
        "-cp",
        f"{libs_dir(settings)}/*",
        main_class,
        *args,
    ]


def write_config(settings: Settings) -> Path:
    kdir = kafka_dir(settings)
    kdir.mkdir(parents=True, exist_ok=True)
    port = settings.kafka_port
    cport = settings.kafka_controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(kdir / "data"),
        # One node: every internal topic has a single replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # Two cores: few threads.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    server = kdir / "server.properties"
    server.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (kdir / "log4j2.properties").write_text(
        "status = warn\n"
        "appender.out.type = Console\n"
        "appender.out.name = STDOUT\n"
        "appender.out.layout.type = PatternLayout\n"
        "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = info\n"
        "rootLogger.appenderRef.out.ref = STDOUT\n"
        "logger.kafka.name = kafka\n"
        "logger.kafka.level = warn\n"
        "logger.request.name = kafka.request.logger\n"
        "logger.request.level = warn\n"
        "logger.statechange.name = state.change.logger\n"
        "logger.statechange.level = warn\n"
    )
    return server


def format_storage(settings: Settings) -> bool:
    """Format the KRaft log dir once; returns True when it was formatted now."""
    server = write_config(settings)
    if (kafka_dir(settings) / "data" / "meta.properties").exists():
        return False
    uuid = subprocess.run(
        _java(settings, "kafka.tools.StorageTool", "random-uuid"),
        capture_output=True,
        text=True,
        check=False,
    )
    if uuid.returncode != 0:
        raise StackError(f"Kafka StorageTool failed:\n{uuid.stderr.strip()[-2000:]}")
    cluster_id = uuid.stdout.strip().splitlines()[-1]
    result = subprocess.run(
        _java(
            settings,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(server),
            "--standalone",
        ),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"Formatting Kafka storage failed:\n{result.stderr.strip()[-2000:]}")
    return True


def server_command(settings: Settings) -> list[str]:
    heap = settings.kafka_heap
    return [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kafka_dir(settings) / 'log4j2.properties'}",
        "-cp",
        f"{libs_dir(settings)}/*",
        "kafka.Kafka",
        str(kafka_dir(settings) / "server.properties"),
    ]


def tool_command(settings: Settings, main_class: str, *args: str) -> list[str]:
    """A Kafka CLI tool (e.g. ProducerPerformance) from the same jars."""
    return _java(settings, main_class, *args)


def probe(settings: Settings) -> str:
    from flightpipe.ingest import kafka_clients

    meta = kafka_clients.admin(settings).list_topics(timeout=5)
    return f"metadata ok, {len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)"
