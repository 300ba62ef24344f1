"""`flightpipe up / down / status / clean`: the lifecycle of the local stack."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from flightpipe import storage
from flightpipe.settings import SECRETS_FILE, SETUP_SECRETS_FILE, Settings
from flightpipe.stack import airflow_env, health, kafka, postgres, s3proxy, services, supervisor
from flightpipe.stack.errors import StackError
from flightpipe.stack.ports import require_free
from flightpipe.stack.secrets import (
    GENERATED_KEYS,
    SUPERUSER_KEY,
    ensure_secrets,
    ensure_setup_secrets,
)

Log = Callable[[str], None]

# Seconds each service gets to answer its probe after start.
TIMEOUTS = {
    "postgres": 60,
    "kafka": 90,
    "dask": 60,
    "airflow": 180,
    "dashboard": 60,
    "storage": 60,
}


@dataclass
class UpResult:
    settings: Settings
    started: list[str]
    seconds: float


def _load_settings() -> tuple[Settings, dict[str, str]]:
    secrets = ensure_secrets(SECRETS_FILE)
    settings = Settings()  # re-read: the secrets file feeds the password fields
    if settings.local_s3:
        # Only a store we run gets generated keys: an external one keeps the default chain.
        secrets = ensure_secrets(SECRETS_FILE, (*GENERATED_KEYS, *s3proxy.CREDENTIAL_KEYS))
        settings = Settings()
    return settings, secrets


def _check_ports(settings: Settings, wanted: list[str]) -> None:
    running = supervisor.statuses(settings)
    for program, ports in services.ports(settings).items():
        if program in wanted and running.get(program) not in ("RUNNING", "STARTING"):
            for port, env_var in ports:
                require_free(port, program, env_var)


def _wait(settings: Settings, service: str, program_hint: str, log: Log) -> None:
    probe = health.checks(settings)[service]
    result = health.wait_healthy(service, probe, TIMEOUTS[service])
    if not result.ok:
        raise StackError(
            f"{service} did not become healthy within {TIMEOUTS[service]} s: {result.detail}\n"
            f"Last lines of {supervisor.log_file(settings, program_hint)}:\n"
            f"{supervisor.tail_log(settings, program_hint)}"
        )
    log(f"  {service:<9} healthy: {result.detail}")


def up(log: Log = print) -> UpResult:
    t0 = time.monotonic()
    settings, secrets = _load_settings()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Only these setup steps see the superuser's password; it is never part of Settings.
    superuser_password = ensure_setup_secrets(SECRETS_FILE, SETUP_SECRETS_FILE)[SUPERUSER_KEY]

    if services.needs_local_postgres(settings):
        postgres.install_if_missing()
        if postgres.init_cluster(settings, superuser_password):
            log(f"Created a PostgreSQL cluster in {postgres.data_dir(settings)}")
    if settings.local_s3:
        s3proxy.require_java()
        s3proxy.install_jars(settings.home)
    if settings.local_kafka:
        kafka.require_java()
        kafka.install_jars(settings)
        if kafka.format_storage(settings):
            log("Formatted Kafka KRaft storage")
    env = airflow_env.environment(settings, secrets)
    programs = services.programs(settings, env)
    names = [p.name for p in programs]
    before = supervisor.statuses(settings)
    _check_ports(settings, names)
    supervisor.start_daemon(settings, programs)

    if "postgres" in names:
        supervisor.start(settings, "postgres")
        result = health.wait_healthy(
            "postgres",
            lambda: postgres.probe(postgres.superuser_dsn(settings, superuser_password)),
            TIMEOUTS["postgres"],
        )
        if not result.ok:
            log_tail = supervisor.tail_log(settings, "postgres")
            raise StackError(f"PostgreSQL did not start: {result.detail}\n{log_tail}")
        postgres.bootstrap(settings, superuser_password)
    others = [n for n in names if n.startswith(("kafka", "dask", s3proxy.PROGRAM))]
    if others:
        supervisor.start(settings, *others)
    if settings.local_airflow:
        airflow_env.write_passwords_file(settings)
        airflow_env.write_local_settings(settings)
        airflow_env.write_env_file(settings, env)
        airflow_env.migrate_db(settings, env)
        supervisor.start(settings, *[n for n in names if n.startswith("airflow")])

    log("Waiting for services to answer their health probes ...")
    if settings.s3_storage:
        _wait(settings, "storage", s3proxy.PROGRAM, log)
        storage.ensure_base(settings)
    _wait(settings, "postgres", "postgres", log)
    _wait(settings, "kafka", kafka.program_names(settings)[0], log)
    _wait(settings, "dask", "dask-scheduler", log)
    _wait(settings, "airflow", "airflow-api-server", log)

    if settings.local_postgres:
        from flightpipe.warehouse.migrate import migrate

        applied = migrate(settings)
        if applied:
            log(f"  warehouse migrated: {len(applied)} migration(s) applied")
    # After the migrations: the dashboard reads their tables and views.
    supervisor.start(settings, "dashboard")
    _wait(settings, "dashboard", "dashboard", log)
    _switch_mode(settings, names, log)
    if settings.local_airflow and (settings.autostart or settings.mode == "live"):
        from flightpipe.orchestration.cycle import start_cycle

        log("Unpausing the DAGs (waiting for the DAG processor to parse them) ...")
        run_id = start_cycle(settings)
        if run_id:
            log(f"  first cycle started: flightpipe_ingest {run_id}")

    after = supervisor.statuses(settings)
    started = [n for n in names if before.get(n) != "RUNNING" and after.get(n) == "RUNNING"]
    return UpResult(settings, started, time.monotonic() - t0)


def _switch_mode(settings: Settings, names: list[str], log: Log) -> None:
    """Hand the replay cursor to the mode asked for. The live processes are in the
    supervisor config only in live mode, so in class mode they were stopped already."""
    from flightpipe.live import clock

    if settings.mode == "class":
        clock.stop_live(settings)
        return
    from flightpipe.warehouse.migrate import migrate

    migrate(settings)  # an external warehouse too: the clock lives there
    now = clock.start_live(settings)
    supervisor.start(settings, *[n for n in names if n.startswith(services.LIVE_PROGRAMS)])
    log(
        f"  live mode: replay clock at {now.now():%Y-%m-%d %H:%M} UTC, {now.speed:g}x "
        f"(one day of 2013 every {86400 / now.speed / 60:.1f} min)"
    )


def down(log: Log = print) -> None:
    settings, _ = _load_settings()
    if not supervisor.is_running(settings):
        log("Nothing is running.")
        return
    log("Stopping all services (data is kept) ...")
    supervisor.shutdown(settings)
    log("Stopped.")


def clean(log: Log = print) -> None:
    settings, _ = _load_settings()
    supervisor.shutdown(settings)
    pg_root = postgres.cluster_dir(settings)
    for path in {settings.run_dir, settings.data_dir, pg_root}:
        if path.exists():
            shutil.rmtree(path)
            log(f"Removed {path}")


def status(settings: Settings) -> tuple[dict[str, str], dict[str, int], list[health.Health]]:
    return (
        supervisor.statuses(settings),
        supervisor.resident_memory(settings),
        health.check_all(settings),
    )
