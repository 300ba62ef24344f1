"""Local Kafka 4 in KRaft mode, run from jars resolved out of Maven Central.

One combined broker+controller node by default; with ``FLIGHTPIPE_KAFKA_BROKERS=3`` three
of them (node n on ``kafka_port + 10 (n - 1)``, its controller likewise), each with its own
folder ``<run_dir>/kafka/broker-<n>/``, forming one controller quorum. They listen on
loopback unless ``FLIGHTPIPE_KAFKA_HOSTS`` gives each node an address of its own host.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from flightpipe.settings import KAFKA_PORT_STEP, Settings
from flightpipe.stack import maven
from flightpipe.stack.errors import StackError

POM = Path(__file__).resolve().parents[3] / "stack" / "kafka" / "pom.xml"


def kafka_dir(settings: Settings) -> Path:
    return settings.run_dir / "kafka"


def libs_dir(settings: Settings) -> Path:
    return settings.home / ".cache" / "kafka-libs"


def require_java() -> None:
    maven.require_java("Kafka broker", "FLIGHTPIPE_KAFKA_BOOTSTRAP")


def install_jars(settings: Settings) -> None:
    maven.copy_dependencies(POM, libs_dir(settings), "Kafka")


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


LOG4J2 = (
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


def node_ids(settings: Settings) -> list[int]:
    return list(range(1, settings.kafka_brokers + 1))


def clustered(settings: Settings) -> bool:
    return settings.kafka_brokers > 1


def node_dir(settings: Settings, node: int) -> Path:
    """Config and data of one node; the single broker keeps the layout it always had."""
    kdir = kafka_dir(settings)
    return kdir / f"broker-{node}" if clustered(settings) else kdir


def program_name(settings: Settings, node: int) -> str:
    return f"kafka-{node}" if clustered(settings) else "kafka"


def program_names(settings: Settings) -> list[str]:
    return [program_name(settings, n) for n in node_ids(settings)]


def broker_address(settings: Settings, node: int) -> str:
    return f"{settings.kafka_broker_hosts[node - 1]}:{settings.kafka_broker_ports[node - 1]}"


def _controller_address(settings: Settings, node: int) -> str:
    return f"{settings.kafka_broker_hosts[node - 1]}:{settings.kafka_controller_ports[node - 1]}"


def server_properties(settings: Settings, node: int = 1) -> dict[str, str]:
    """The broker+controller config of one local node (node ids start at 1)."""
    broker, controller = broker_address(settings, node), _controller_address(settings, node)
    quorum = ",".join(_controller_address(settings, n) for n in node_ids(settings))
    replicas = str(settings.replication_factor)
    min_isr = str(settings.min_insync_replicas)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node),
        "controller.quorum.bootstrap.servers": quorum,
        "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node_dir(settings, node) / "data"),
        # Internal topics are replicated like the pipeline's own: a copy on every broker,
        # and writes need a majority, so losing one broker loses neither data nor writes.
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
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


def server_config(settings: Settings, node: int = 1) -> Path:
    return node_dir(settings, node) / "server.properties"


def write_config(settings: Settings) -> list[Path]:
    """Write every local node's server.properties (and the shared logging config)."""
    check_layout(settings)
    kdir = kafka_dir(settings)
    kdir.mkdir(parents=True, exist_ok=True)
    written = []
    for node in node_ids(settings):
        server = server_config(settings, node)
        server.parent.mkdir(parents=True, exist_ok=True)
        props = server_properties(settings, node)
        server.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        written.append(server)
    (kdir / "log4j2.properties").write_text(LOG4J2)
    return written


def check_layout(settings: Settings) -> None:
    """Refuse to mix the data of the two modes: a broker would start on the wrong data."""
    kdir = kafka_dir(settings)
    single, nodes = kdir / "data", sorted(kdir.glob("broker-*"))
    if clustered(settings) and single.exists():
        raise StackError(
            f"{kdir} holds single-broker Kafka data, but FLIGHTPIPE_KAFKA_BROKERS=3: run "
            f"`make clean` (deletes all local state) or move {kdir} aside, then `make up`."
        )
    if not clustered(settings) and nodes:
        raise StackError(
            f"{kdir} holds 3-broker Kafka data, but FLIGHTPIPE_KAFKA_BROKERS=1: set "
            f"FLIGHTPIPE_KAFKA_BROKERS=3, or run `make clean` (deletes all local state) or "
            f"move {kdir} aside, then `make up`."
        )
    ports = [*settings.kafka_broker_ports, *settings.kafka_controller_ports]
    if len(set(ports)) != len(ports) or max(ports) > 65535:
        raise StackError(
            f"FLIGHTPIPE_KAFKA_PORT={settings.kafka_port} and FLIGHTPIPE_KAFKA_CONTROLLER_PORT="
            f"{settings.kafka_controller_port} give the local Kafka nodes the ports {ports}, "
            f"which overlap or exceed 65535; pick two ports that differ by less than "
            f"{KAFKA_PORT_STEP}."
        )


def random_uuid() -> str:
    """A Kafka Uuid string, as ``StorageTool random-uuid`` prints it.

    Kafka's own generator: 16 random bytes (a v4 UUID) in URL-safe base64 without padding,
    drawn again when the text would start with "-" (it would read as a command-line option).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def quorum_ids(settings: Settings) -> dict[str, str]:
    """The cluster id and each node's metadata directory id, created once and kept.

    Every node must be formatted with the same values; they are written before the first
    format, so a format that failed half-way is completed with the same ones.
    """
    path = kafka_dir(settings) / "quorum.properties"
    if path.exists():
        lines = path.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)
    ids = {"cluster.id": random_uuid()}
    ids |= {f"directory.id.{n}": random_uuid() for n in node_ids(settings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in ids.items()))
    return ids


def initial_controllers(settings: Settings, ids: dict[str, str]) -> str:
    """``--initial-controllers``: ``id@host:port:directory-id`` of every controller."""
    return ",".join(
        f"{n}@{_controller_address(settings, n)}:{ids[f'directory.id.{n}']}"
        for n in node_ids(settings)
    )


def format_storage(settings: Settings) -> bool:
    """Format each node's KRaft log dir once; returns True when any was formatted now."""
    servers = write_config(settings)
    pending = [
        server
        for node, server in zip(node_ids(settings), servers, strict=True)
        if not (node_dir(settings, node) / "data" / "meta.properties").exists()
    ]
    if not pending:
        return False
    ids = quorum_ids(settings)
    if clustered(settings):
        quorum = ["--initial-controllers", initial_controllers(settings, ids)]
    else:
        quorum = ["--standalone"]
    # One JVM per node, side by side: each start costs seconds, and the nodes are independent.
    formats = [
        subprocess.Popen(
            _java(
                settings, "kafka.tools.StorageTool", "format", "-t", ids["cluster.id"],
                "-c", str(server), *quorum,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for server in pending
    ]  # fmt: skip
    errors = [(proc.communicate()[1], proc.returncode) for proc in formats]
    failures = [err for err, code in errors if code != 0]
    if failures:
        raise StackError(f"Formatting Kafka storage failed:\n{failures[0].strip()[-2000:]}")
    return True


def server_command(settings: Settings, node: int = 1) -> list[str]:
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
        str(server_config(settings, node)),
    ]


def tool_command(settings: Settings, main_class: str, *args: str) -> list[str]:
    """A Kafka CLI tool (e.g. ProducerPerformance) from the same jars."""
    return _java(settings, main_class, *args)


def probe(settings: Settings) -> str:
    from flightpipe.ingest import kafka_clients

    meta = kafka_clients.admin(settings).list_topics(timeout=5)
    # Topics are created with one replica per configured broker; fewer cannot host them.
    if len(meta.brokers) < settings.kafka_brokers:
        raise RuntimeError(f"{len(meta.brokers)} of {settings.kafka_brokers} brokers up")
    return f"metadata ok, {len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)"
