"""Every knob of flightpipe in one place.

Each field is read from an environment variable ``FLIGHTPIPE_<FIELD>`` (case-insensitive),
then from ``.env`` in the project home, then from the generated secrets file
``<run_dir>/secrets.env``. Pointing ``kafka_bootstrap``, ``database_url`` or
``dask_scheduler`` at existing services makes ``flightpipe up`` leave that local service alone.

The PostgreSQL superuser password is deliberately not a setting: it lives in
``<run_dir>/setup-secrets.env``, which only ``flightpipe up`` reads (see
:mod:`flightpipe.stack.secrets`), so no service or task that loads these settings holds it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    explicit = os.environ.get("FLIGHTPIPE_HOME")
    if explicit:
        return Path(explicit).resolve()
    # An editable install lives in the checkout: src/flightpipe/settings.py -> checkout root.
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists():
        return checkout
    return Path.cwd()


HOME = _default_home()
RUN_DIR = Path(os.environ.get("FLIGHTPIPE_RUN_DIR", HOME / "run")).resolve()
SECRETS_FILE = RUN_DIR / "secrets.env"
# Read by `flightpipe up` only: services and tasks never load it.
SETUP_SECRETS_FILE = RUN_DIR / "setup-secrets.env"

# Warehouse roles by duty. The migrator is ``warehouse_user`` (owner of the schemas); the
# others have fixed names because the grant migrations name them.
Role = Literal["migrator", "loader", "ml", "reader"]
ROLES: tuple[Role, ...] = ("migrator", "loader", "ml", "reader")
DUTY_ROLE_USERS: dict[Role, str] = {
    "loader": "flightpipe_loader",
    "ml": "flightpipe_ml",
    "reader": "flightpipe_reader",
}

STORAGE_SCHEMES = ("file", "s3")


def check_storage_url(url: str) -> str:
    """``url`` if the zones can live there (a path, ``file://`` or ``s3://bucket[/prefix]``),
    else a one-line ``ValueError``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower() if len(parts.scheme) > 1 else "file"
    if scheme not in STORAGE_SCHEMES:
        raise ValueError(f"storage URL {url!r}: scheme {scheme!r} is not supported (path or s3://)")
    if scheme == "s3" and not parts.netloc:
        raise ValueError(f"storage URL {url!r} names no bucket (s3://<bucket>[/prefix])")
    return url


KAFKA_BROKER_COUNTS = (1, 3)
# Local broker n listens on kafka_port + step * (n - 1), its controller likewise.
KAFKA_PORT_STEP = 10


class Settings(BaseSettings):
    _local_kafka: bool = PrivateAttr(default=False)

    model_config = SettingsConfigDict(
        env_prefix="FLIGHTPIPE_",
        env_file=(HOME / ".env", SECRETS_FILE),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- where things live -------------------------------------------------------------
    home: Path = Field(
        default=HOME, description="Project checkout; all relative paths hang off it."
    )
    run_dir: Path = Field(default=RUN_DIR, description="Run state: logs, pids, configs, secrets.")
    data_dir: Path = Field(default=HOME / "data", description="Landing zone, reports, models.")

    # --- storage of the zones, models and reports ----------------------------------------
    storage_url: str = Field(
        default="",
        description="Base URL of the landing and clean zones, models and reports: a path or "
        "s3://bucket/prefix (any S3-compatible store). Empty: data_dir.",
    )
    s3_endpoint_url: str = Field(
        default="",
        description="S3 endpoint, e.g. https://s3.eu-west-1.amazonaws.com (external store). "
        "Empty with an s3:// storage URL: the local S3Proxy.",
    )
    s3_region: str = Field(default="us-east-1", description="S3 region name.")
    s3_access_key: str = Field(
        default="",
        description="S3 access key id (local S3Proxy: generated; secrets file). Empty: the "
        "default AWS credential chain.",
    )
    s3_secret_key: str = Field(default="", description="S3 secret key (local S3Proxy: generated).")
    s3proxy_port: int = Field(default=9310, description="Local S3Proxy port (127.0.0.1).")

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap: str = Field(
        default="",
        description="Kafka bootstrap servers (external: skip local). Default: the local brokers.",
    )
    kafka_brokers: int = Field(
        default=1,
        description="Local Kafka brokers, 1 or 3; new topics get this replication factor "
        "(3: min.insync.replicas 2).",
    )
    kafka_hosts: str = Field(
        default="",
        description="Listen address of each local broker, node 1 first, comma-separated "
        "(one host per broker). Empty: 127.0.0.1 for all.",
    )
    kafka_port: int = Field(
        default=9092, description="Local Kafka broker port (broker n: + 10 x (n - 1))."
    )
    kafka_controller_port: int = Field(
        default=9093, description="Local KRaft controller port (node n: + 10 x (n - 1))."
    )
    kafka_heap: str = Field(default="768m", description="Max heap (-Xmx) of each local broker.")
    flights_partitions: int = Field(default=6, description="Partitions of the flights topic.")
    weather_partitions: int = Field(default=3, description="Partitions of the weather topic.")
    consumers: int = Field(default=3, description="Members of the landing consumer group.")
    consumer_group: str = Field(default="flightpipe-landing", description="Consumer group id.")
    consume_timeout: float = Field(
        default=1500.0,
        gt=0,
        description="Seconds a batch ingest member may take to learn its run's end offsets "
        "and reach them before it fails.",
    )
    topic_prefix: str = Field(default="", description="Prefix for every topic name (tests).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka client security.protocol (external clusters)."
    )
    kafka_sasl_mechanism: str = Field(
        default="", description="Kafka SASL mechanism, e.g. SCRAM-SHA-512 (empty: no SASL)."
    )
    kafka_sasl_username: str = Field(default="", description="Kafka SASL user name.")
    kafka_sasl_password: str = Field(default="", description="Kafka SASL password.")
    kafka_ssl_ca_location: str = Field(
        default="", description="CA file that signs the brokers' TLS certificates."
    )

    # --- PostgreSQL --------------------------------------------------------------------
    pg_host: str = Field(
        default="127.0.0.1",
        description="Local PostgreSQL listen address, and the host the local roles' URLs "
        "name. Not loopback: clients of the server's own subnets may log in (password).",
    )
    pg_port: int = Field(default=54320, description="Local PostgreSQL port.")
    warehouse_db: str = Field(default="warehouse", description="Warehouse database name.")
    warehouse_user: str = Field(
        default="flightpipe",
        description="Warehouse owner role (the migrator: owns the schemas, runs migrations).",
    )
    warehouse_password: str = Field(default="", description="Generated; secrets file.")
    loader_password: str = Field(
        default="", description="Generated; secrets file. Role flightpipe_loader."
    )
    ml_password: str = Field(default="", description="Generated; secrets file. Role flightpipe_ml.")
    reader_password: str = Field(
        default="", description="Generated; secrets file. Role flightpipe_reader."
    )
    database_url: str | None = Field(
        default=None,
        description="Warehouse URL (external: skip local PostgreSQL); the migrator's, and "
        "every role's unless its own URL is set.",
    )
    database_url_loader: str | None = Field(
        default=None, description="External warehouse URL of the loader role."
    )
    database_url_ml: str | None = Field(
        default=None, description="External warehouse URL of the ML role."
    )
    database_url_reader: str | None = Field(
        default=None, description="External warehouse URL of the reader role."
    )
    pg_connect_timeout: int = Field(
        default=10, description="Seconds to wait for a PostgreSQL connection before failing."
    )
    lock_wait: int = Field(
        default=600,
        description="Seconds a transform or load waits for the one running before it to end.",
    )
    airflow_db: str = Field(default="airflow", description="Airflow metadata database.")
    airflow_db_user: str = Field(default="airflow", description="Airflow metadata role.")
    airflow_db_password: str = Field(default="", description="Generated; secrets file.")

    # --- Dask --------------------------------------------------------------------------
    dask_scheduler: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLIGHTPIPE_DASK_SCHEDULER", "DASK_SCHEDULER_ADDRESS"),
        description="Dask scheduler address (external: skip local Dask).",
    )
    dask_port: int = Field(default=8786, description="Local Dask scheduler port.")
    dask_dashboard_port: int = Field(default=8787, description="Local Dask dashboard port.")
    dask_workers: int = Field(default=2, description="Local Dask worker processes.")
    dask_threads: int = Field(default=1, description="Threads per local Dask worker.")
    dask_memory_limit: str = Field(default="3GiB", description="Memory limit per Dask worker.")
    dask_compute_timeout: int = Field(
        default=600, description="Seconds a transform may compute on Dask before it fails."
    )

    # --- Airflow -----------------------------------------------------------------------
    airflow_port: int = Field(default=8080, description="Airflow API server / UI port.")
    airflow_admin_user: str = Field(default="admin", description="Airflow UI login.")
    airflow_admin_password: str = Field(default="", description="Generated; secrets file.")
    airflow_reader_user: str = Field(
        default="flightpipe-timings",
        description="Airflow API login with the viewer role (the timings teardown reads runs).",
    )
    airflow_reader_password: str = Field(default="", description="Generated; secrets file.")
    airflow_parallelism: int = Field(
        default=10,
        description="Airflow core.parallelism: tasks running at once. Ingest runs its "
        "producers and consumer members together, so it must exceed `FLIGHTPIPE_CONSUMERS`.",
    )
    airflow_url: str | None = Field(default=None, description="External Airflow API base URL.")

    # --- dashboard -----------------------------------------------------------------------
    dashboard_port: int = Field(default=8050, description="Live dashboard port (127.0.0.1).")
    dashboard_refresh: float = Field(
        default=5.0, gt=0, description="Seconds between two refreshes of the live dashboard."
    )

    # --- replay and cadence --------------------------------------------------------------
    mode: Literal["class", "live"] = Field(
        default="class",
        description="class: an Airflow ingest run replays a slice every cycle; live: "
        "producers replay 2013 continuously and every landed file starts a load "
        "(`make live`).",
    )
    replay_speed: float = Field(
        default=480.0,
        gt=0,
        description="Live mode: replay seconds per wall second (480: one day of 2013 in "
        "3 minutes).",
    )
    live_follow_minutes: float = Field(
        default=5.0,
        gt=0,
        description="Live mode: minutes between two runs of the reports and the model, when "
        "a load has finished since their last (every load would start them again).",
    )
    ml_keep_trainings: int = Field(
        default=3,
        ge=1,
        description="Trainings whose scores stay in ml.predictions: each prediction run "
        "deletes the older ones' (their rows in ml.model_runs stay), so the table does not "
        "grow by every flight at every training.",
    )
    replay_start: str = Field(default="2013-01-01", description="First day replayed (local date).")
    slice_days: int = Field(default=1, description="Days of 2013 replayed per ingest run.")
    cycle_minutes: int = Field(default=3, description="Minutes between ingest runs (class mode).")
    autostart: bool = Field(
        default=True, description="`up` unpauses the DAGs and starts the first pipeline cycle."
    )

    # --- derived -------------------------------------------------------------------------
    @field_validator("kafka_brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        # Two brokers cannot keep a majority of controllers when one fails, so they would
        # add processes without adding fault tolerance.
        if value not in KAFKA_BROKER_COUNTS:
            raise ValueError(f"{value} brokers is not supported; use 1 or 3")
        return value

    @model_validator(mode="after")
    def _one_host_per_broker(self) -> Settings:
        hosts = self.kafka_broker_hosts
        if len(hosts) != self.kafka_brokers or not all(hosts):
            raise ValueError(
                f"kafka_hosts {self.kafka_hosts!r} names {len(hosts)} address(es) for "
                f"{self.kafka_brokers} broker(s)"
            )
        return self

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        return check_storage_url(value.strip())

    @model_validator(mode="after")
    def _room_for_ingest(self) -> Settings:
        # Members wait for the producers' snapshot: with every slot taken by members, no
        # producer could run and the ingest run would never end.
        if self.airflow_parallelism <= self.consumers:
            raise ValueError(
                f"airflow_parallelism ({self.airflow_parallelism}) must be greater than "
                f"consumers ({self.consumers}): the consumer members run beside the producers"
            )
        return self

    @model_validator(mode="after")
    def _resolve_local_kafka(self) -> Settings:
        # An empty bootstrap means "the brokers flightpipe runs"; anything else is external.
        if not self.kafka_bootstrap:
            # Not via setattr: that would mark the field as explicitly set.
            self.__dict__["kafka_bootstrap"] = ",".join(
                f"{host}:{port}"
                for host, port in zip(self.kafka_broker_hosts, self.kafka_broker_ports, strict=True)
            )
            self._local_kafka = True
        return self

    @property
    def local_kafka(self) -> bool:
        return self._local_kafka

    @property
    def kafka_broker_hosts(self) -> list[str]:
        """Listen address of each local broker (and its controller), node id 1 first."""
        if not self.kafka_hosts.strip():
            return ["127.0.0.1"] * self.kafka_brokers
        return [host.strip() for host in self.kafka_hosts.split(",")]

    @property
    def kafka_broker_ports(self) -> list[int]:
        """Client port of each local broker, node id 1 first."""
        return [self.kafka_port + KAFKA_PORT_STEP * i for i in range(self.kafka_brokers)]

    @property
    def kafka_controller_ports(self) -> list[int]:
        """KRaft controller port of each local node, node id 1 first."""
        return [self.kafka_controller_port + KAFKA_PORT_STEP * i for i in range(self.kafka_brokers)]

    @property
    def replication_factor(self) -> int:
        """Replicas of every new topic: one per broker, so each broker holds a copy."""
        return self.kafka_brokers

    @property
    def min_insync_replicas(self) -> int:
        """Replicas that must have a write before acks=all succeeds: a majority."""
        return self.replication_factor // 2 + 1

    @property
    def local_postgres(self) -> bool:
        return self.database_url is None

    @property
    def local_dask(self) -> bool:
        return self.dask_scheduler is None

    @property
    def local_airflow(self) -> bool:
        return self.airflow_url is None

    def role_user(self, role: Role) -> str:
        return self.warehouse_user if role == "migrator" else DUTY_ROLE_USERS[role]

    def role_password(self, role: Role) -> str:
        field = "warehouse_password" if role == "migrator" else f"{role}_password"
        return str(getattr(self, field))

    def dsn(self, role: Role) -> str:
        """The warehouse URL of ``role``: the one place a connection's credentials come from.

        External warehouse: the role's own ``database_url_<role>`` when set, else the one
        ``database_url`` (then every duty runs as that URL's user).
        """
        if self.database_url:
            own = None if role == "migrator" else getattr(self, f"database_url_{role}")
            return str(own or self.database_url)
        user = quote(self.role_user(role), safe="")
        password = quote(self.role_password(role), safe="")
        return f"postgresql://{user}:{password}@{self.pg_host}:{self.pg_port}/{self.warehouse_db}"

    @property
    def warehouse_dsn(self) -> str:
        """The migrator's URL (owner of the schemas); tasks use :meth:`dsn` of their role."""
        return self.dsn("migrator")

    @property
    def airflow_dsn(self) -> str:
        return (
            f"postgresql+psycopg2://{self.airflow_db_user}:{self.airflow_db_password}"
            f"@{self.pg_host}:{self.pg_port}/{self.airflow_db}"
        )

    @property
    def dask_address(self) -> str:
        return self.dask_scheduler or f"tcp://127.0.0.1:{self.dask_port}"

    @property
    def airflow_base_url(self) -> str:
        return self.airflow_url or f"http://127.0.0.1:{self.airflow_port}"

    @property
    def storage_base(self) -> str:
        """Base URL (or path) every zone hangs off."""
        return self.storage_url.rstrip("/") or str(self.data_dir)

    @property
    def s3_storage(self) -> bool:
        return self.storage_base.lower().startswith("s3://")

    @property
    def local_s3(self) -> bool:
        """The object store is the S3Proxy that ``flightpipe up`` runs."""
        return self.s3_storage and not self.s3_endpoint_url

    @property
    def s3_endpoint(self) -> str:
        return self.s3_endpoint_url or f"http://127.0.0.1:{self.s3proxy_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @staticmethod
    def field_for_env(env_name: str) -> str:
        return env_name.split(" ")[0].removeprefix("FLIGHTPIPE_").lower()


def _shown_default(name: str, default: object) -> str:
    relative = {"home": "the checkout", "run_dir": "<home>/run", "data_dir": "<home>/data"}
    if name in relative:
        return relative[name]
    if name.endswith("password"):
        return "generated"
    if name == "kafka_bootstrap":
        return "127.0.0.1:<port of each local broker>"
    return "" if default is None else str(default)


def settings_rows() -> list[tuple[str, str, str]]:
    """Every setting as (environment variable, default, meaning)."""
    rows = []
    for name, field in Settings.model_fields.items():
        env = f"FLIGHTPIPE_{name.upper()}"
        if name == "dask_scheduler":
            env += " (or DASK_SCHEDULER_ADDRESS)"
        rows.append((env, _shown_default(name, field.default), field.description or ""))
    return rows


def settings_markdown() -> str:
    """The settings table the README embeds (a test keeps the two in step)."""
    rows = settings_rows()
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{env}` | `{default}` | {meaning} |" for env, default, meaning in rows]
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
