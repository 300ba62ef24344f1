"""A flightpipe deployment over ten simulated hosts, started with the stack's own code.

Each host is a network namespace with one address on a private /24 (see :mod:`netns`).
Kafka, PostgreSQL, S3Proxy and Dask are configured, formatted and started by the same
functions ``flightpipe up`` uses, told to listen on their host's address; the processes are
plain children started with ``ip netns exec`` instead of supervisor programs. The hosts
share this machine's disk, except the Dask workers: each runs in a mount namespace where
the test's folders and the checkout's data folder are empty tmpfs mounts, and in a PID
namespace of its own (no ``/proc/<pid>/root`` of another host's process to read through).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flightpipe.settings import Settings
from flightpipe.stack import airflow_env, kafka, postgres, s3proxy, services
from flightpipe.stack.airflow_env import venv_bin
from flightpipe.waiting import poll
from flightpipe.warehouse.db import database_environment

try:  # the tests folders may or may not be packages
    from .netns import Host
except ImportError:
    from netns import Host

SUBNET = "10.213.0"
# Host -> last byte of its address. "ctl" is where the test itself runs its checks.
LAYOUT = {
    "ctl": 2,
    "kafka-1": 11,
    "kafka-2": 12,
    "kafka-3": 13,
    "postgres": 20,
    "s3": 30,
    "dask-scheduler": 40,
    "dask-worker-1": 41,
    "dask-worker-2": 42,
    "airflow": 50,
}
ROLES = {
    "ctl": "test checks (client of every service)",
    "kafka-1": "Kafka broker + KRaft controller, node 1",
    "kafka-2": "Kafka broker + KRaft controller, node 2",
    "kafka-3": "Kafka broker + KRaft controller, node 3",
    "postgres": "PostgreSQL: warehouse and Airflow metadata",
    "s3": "S3Proxy: landing and clean zones",
    "dask-scheduler": "Dask scheduler",
    "dask-worker-1": "Dask worker (no local data folders)",
    "dask-worker-2": "Dask worker (no local data folders)",
    "airflow": "Airflow API server + LocalExecutor task runs",
}
PG_PORT, S3_PORT, DASK_PORT, AIRFLOW_PORT = 5432, 9310, 8786, 8080
KAFKA_PORT, KAFKA_CONTROLLER_PORT = 9092, 9093
START_TIMEOUT = 180.0


def addresses() -> dict[str, str]:
    return {name: f"{SUBNET}.{last}" for name, last in LAYOUT.items()}


def base_environment() -> dict[str, str]:
    """This process's environment without any flightpipe, Airflow or Dask configuration:
    a host gets only what the cluster gives it."""
    drop = ("FLIGHTPIPE_", "AIRFLOW", "DASK_", "_AIRFLOW")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return env | {"NO_PROXY": "*", "PYTHONUNBUFFERED": "1"}


@dataclass
class Cluster:
    token: str
    root: Path
    home: Path
    hosts: dict[str, Host]
    secrets: dict[str, str]
    superuser_password: str
    bucket: str
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    # --- where things are ----------------------------------------------------------------
    def address(self, host: str) -> str:
        return self.hosts[host].address

    def folder(self, host: str) -> Path:
        return self.root / "hosts" / host

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return f"--- {path.name}:\n" + "\n".join(text.splitlines()[-lines:])

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = time.monotonic() - started

    # --- settings of each host -------------------------------------------------------------
    def own_settings(self, host: str, **fields: Any) -> Settings:
        # No .env and no secrets file: a host knows what it is told here, nothing else.
        folder = self.folder(host)
        return Settings(
            _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init-only option
            home=self.home,
            run_dir=folder / "run",
            data_dir=folder / "data",
            **fields,
        )

    def kafka_settings(self) -> Settings:
        hosts = [self.address(f"kafka-{n}") for n in (1, 2, 3)]
        return self.own_settings(
            "kafka", kafka_bootstrap="", kafka_brokers=3, kafka_hosts=",".join(hosts),
            kafka_port=KAFKA_PORT, kafka_controller_port=KAFKA_CONTROLLER_PORT,
            kafka_heap="384m",
        )  # fmt: skip

    def postgres_settings(self) -> Settings:
        return self.own_settings(
            "postgres", pg_host=self.address("postgres"), pg_port=PG_PORT, **self._passwords()
        )

    def _passwords(self) -> dict[str, str]:
        keys = [k for k in self.secrets if k.startswith("FLIGHTPIPE_")]
        return {Settings.field_for_env(k): self.secrets[k] for k in keys}

    def client_fields(self) -> dict[str, Any]:
        """What every stage host (Airflow, the checks) sets: addresses, never loopback."""
        database = {
            Settings.field_for_env(k): v
            for k, v in database_environment(self.postgres_settings()).items()
        }
        return {
            **self._passwords(),
            **database,
            "kafka_bootstrap": self.kafka_settings().kafka_bootstrap,
            "kafka_brokers": 3,
            "pg_host": self.address("postgres"),  # Airflow's metadata database
            "pg_port": PG_PORT,
            "dask_scheduler": f"tcp://{self.address('dask-scheduler')}:{DASK_PORT}",
            "storage_url": f"s3://{self.bucket}/pipeline",
            "s3_endpoint_url": f"http://{self.address('s3')}:{S3_PORT}",
            "airflow_url": f"http://{self.address('airflow')}:{AIRFLOW_PORT}",
        }

    def client_settings(self, host: str) -> Settings:
        return self.own_settings(host, **self.client_fields())

    def client_environment(self, host: str) -> dict[str, str]:
        """The same settings as FLIGHTPIPE_* variables, for the processes of ``host``."""
        own = self.client_settings(host)
        fields = {**self.client_fields(), "home": own.home, "run_dir": own.run_dir,
                  "data_dir": own.data_dir}  # fmt: skip
        return {f"FLIGHTPIPE_{k.upper()}": str(v) for k, v in fields.items()}

    def airflow_environment(self) -> dict[str, str]:
        own = self.client_settings("airflow")
        airflow = airflow_env.environment(own, self.secrets, host=self.address("airflow"))
        return {**base_environment(), **self.client_environment("airflow"), **airflow}

    # --- processes --------------------------------------------------------------------------
    def start(
        self,
        host: str,
        name: str,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """``command`` on ``host``, its output in ``logs/<name>.log``."""
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("wb") as log:
            proc = subprocess.Popen(
                self.hosts[host].command(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env if env is not None else base_environment(),
                cwd=cwd,
            )
        self.procs.append((name, proc))
        return proc

    def wait(self, name: str, probe: Callable[[], object], timeout: float = START_TIMEOUT) -> None:
        """Until ``probe`` answers; fails with the log of ``name`` if it never does."""
        proc = dict(self.procs).get(name)

        def attempt() -> str | None:
            try:
                probe()
            except Exception as exc:  # not up yet: ask again
                return f"{type(exc).__name__}: {exc}"
            return None

        def done(error: str | None) -> bool:
            return error is None or (proc is not None and proc.poll() is not None)

        error = poll(attempt, until=done, timeout=timeout, interval=0.5)
        if error is not None:
            raise RuntimeError(f"{name} did not come up: {error}\n{self.tail(name)}")

    def reap(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


# --- the services, each with the stack's own functions ----------------------------------------
def hidden(command: Sequence[str], folders: Sequence[Path], workdir: Path) -> list[str]:
    """``command`` in mount and PID namespaces of its own, with ``folders`` empty tmpfs
    mounts (private to it); ``workdir``, inside them, is made fresh for it."""
    mounts = [f"mount -t tmpfs fpct-hidden {shlex.quote(str(f))}" for f in folders]
    script = " && ".join([*mounts, f"mkdir -p {shlex.quote(str(workdir))}",
                          f"exec {shlex.join(command)}"])  # fmt: skip
    return ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child", "--mount-proc", "sh", "-c", script]  # fmt: skip


def hidden_folders(cluster: Cluster) -> list[Path]:
    """What a Dask worker must not see: every folder of the test (the other hosts' data,
    the store's objects on disk) and the checkout's data folder."""
    checkout_data = cluster.home / "data"
    return [cluster.root, *([checkout_data] if checkout_data.is_dir() else [])]


def start_dask(cluster: Cluster) -> None:
    scheduler = cluster.client_settings("dask-scheduler")
    command = services.dask_scheduler_command(scheduler, host=cluster.address("dask-scheduler"))
    cluster.start("dask-scheduler", "dask-scheduler", command)
    for number in (1, 2):
        host = f"dask-worker-{number}"
        own = cluster.own_settings(host, dask_memory_limit="2GiB")
        worker = services.dask_worker_command(
            own, number, host=cluster.address(host), scheduler=scheduler.dask_address
        )
        command = hidden(worker, hidden_folders(cluster), own.run_dir / "dask")
        # No FLIGHTPIPE_* variables: the tasks carry the URLs and the storage options.
        cluster.start(host, host, command)


def start_s3(cluster: Cluster) -> None:
    s3proxy.install_jars(cluster.home)
    folder = cluster.folder("s3") / "store"
    props = s3proxy.write_config(
        folder, S3_PORT, cluster.secrets["FLIGHTPIPE_S3_ACCESS_KEY"],
        cluster.secrets["FLIGHTPIPE_S3_SECRET_KEY"], host=cluster.address("s3"),
    )  # fmt: skip
    cluster.start("s3", "s3proxy", s3proxy.command(cluster.home, props))


def prepare_kafka(cluster: Cluster) -> None:
    settings = cluster.kafka_settings()
    kafka.require_java()
    kafka.install_jars(settings)
    kafka.format_storage(settings)


def start_kafka(cluster: Cluster) -> None:
    settings = cluster.kafka_settings()
    for node in kafka.node_ids(settings):
        command = kafka.server_command(settings, node)
        cluster.start(f"kafka-{node}", kafka.program_name(settings, node), command)


def prepare_postgres(cluster: Cluster) -> None:
    settings = cluster.postgres_settings()
    if not (postgres.PG_BIN / "postgres").exists():
        raise RuntimeError(
            f"PostgreSQL {postgres.PG_VERSION} is not installed in {postgres.PG_BIN}"
        )
    postgres.init_cluster(settings, cluster.superuser_password)


def start_postgres(cluster: Cluster) -> None:
    settings = cluster.postgres_settings()
    command = postgres.as_server_user(postgres.server_command(settings))
    cluster.start("postgres", "postgres", command, cwd=postgres.cluster_dir(settings))


def airflow_command(*args: str) -> list[str]:
    return [str(venv_bin() / "airflow"), *args]


def api_answers(base_url: str) -> None:
    """The API server is up and reaches its metadata database (no scheduler runs here)."""
    response = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=5)
    response.raise_for_status()
    status = response.json()["metadatabase"]["status"]
    if status != "healthy":
        raise RuntimeError(f"metadata database {status}")
