"""What the running stack exposes, and what each warehouse role may do.

Listeners, secret files and process command lines are read from the real processes of the
stack (the supervisord tree); privileges are exercised against a scratch warehouse, so a
refused statement proves the grant, and nothing is left behind.
"""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import errors

from flightpipe.settings import SECRETS_FILE, SETUP_SECRETS_FILE, Settings
from flightpipe.stack import postgres, supervisor
from flightpipe.stack.airflow_env import airflow_home
from flightpipe.stack.secrets import read_secrets
from flightpipe.warehouse.db import connect, scratch_database, with_database

pytestmark = pytest.mark.services

COUNT_ZZ = "SELECT count(*) FROM dw.dim_airline WHERE carrier_code = 'ZZ'"


def stack_processes(settings: Settings) -> list[psutil.Process]:
    """supervisord and everything below it: services, their workers, running tasks."""
    pid = int((settings.run_dir / "supervisord.pid").read_text().strip())
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def listening(proc: psutil.Process) -> list[str]:
    try:
        conns = proc.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []  # a task process that ended meanwhile
    return [
        f"{c.laddr.ip}:{c.laddr.port}"
        for c in conns
        if c.laddr and (c.status == psutil.CONN_LISTEN or (c.type == 2 and not c.raddr))
    ]


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_every_listener_of_the_stack_is_loopback(stack: Settings) -> None:
    found = {
        f"{p.pid} {p.name()}": addrs for p in stack_processes(stack) if (addrs := listening(p))
    }
    ports = {int(a.rsplit(":", 1)[1]) for addrs in found.values() for a in addrs}
    # Not vacuous: the services' own ports are among the sockets seen.
    assert {stack.pg_port, stack.kafka_port, stack.dask_port, stack.airflow_port} <= ports, found
    exposed = {proc: [a for a in addrs if not is_loopback(a)] for proc, addrs in found.items()}
    assert not {proc: addrs for proc, addrs in exposed.items() if addrs}, exposed


def secret_files(settings: Settings) -> list[Path]:
    home = airflow_home(settings)
    return [
        SECRETS_FILE,
        SETUP_SECRETS_FILE,
        supervisor.conf_path(settings),
        settings.run_dir / "airflow.env",
        home / "passwords.json",
        home / "airflow.cfg",
    ]


def test_secret_files_are_private(stack: Settings) -> None:
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in secret_files(stack) if p.exists()}
    assert set(modes) >= {str(SECRETS_FILE), str(SETUP_SECRETS_FILE)}
    assert {p: m for p, m in modes.items() if m != 0o600} == {}
    # initdb's password file exists only while initdb runs.
    assert not (postgres.cluster_dir(stack) / ".pwfile").exists()


def all_secrets() -> dict[str, str]:
    values = {**read_secrets(SECRETS_FILE), **read_secrets(SETUP_SECRETS_FILE)}
    assert values and all(len(v) >= 16 for v in values.values())
    return values


def proc_file(proc: psutil.Process, name: str) -> str:
    try:
        return Path(f"/proc/{proc.pid}/{name}").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""  # ended meanwhile


def test_no_secret_on_any_command_line(stack: Settings) -> None:
    secrets = all_secrets()
    leaks = [
        f"{key} in pid {proc.pid} ({proc_file(proc, 'comm').strip()})"
        for proc in stack_processes(stack)
        for key, value in secrets.items()
        if value in proc_file(proc, "cmdline")
    ]
    assert leaks == []


def test_superuser_password_reaches_no_service_or_task(stack: Settings) -> None:
    password = read_secrets(SETUP_SECRETS_FILE)["PG_SUPERUSER_PASSWORD"]
    assert "pg_superuser_password" not in Settings.model_fields
    assert password not in SECRETS_FILE.read_text()
    assert password not in supervisor.conf_path(stack).read_text()
    holders = [p.pid for p in stack_processes(stack) if password in proc_file(p, "environ")]
    assert holders == []


def test_public_cannot_connect_to_either_database(stack: Settings, airflow_db_url: str) -> None:
    # The Airflow role holds no grant on the warehouse: only PUBLIC's CONNECT could let it in.
    airflow_role = with_database(airflow_db_url, stack.warehouse_db)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(airflow_role, connect_timeout=5)
    # ... and the warehouse roles none on Airflow's database.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(with_database(stack.dsn("reader"), stack.airflow_db), connect_timeout=5)
    with connect(stack, "reader") as conn:
        public = conn.execute(
            "SELECT d.datname, a.privilege_type FROM pg_database AS d,"
            " aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a"
            " WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY')"
            " AND d.datname IN (%s, %s)",
            [stack.warehouse_db, stack.airflow_db],
        ).fetchall()
        creates = conn.execute(
            "SELECT has_schema_privilege('flightpipe_reader', 'public', 'CREATE')"
        ).fetchone()
    assert public == []
    assert creates == (False,)


@pytest.fixture(scope="module")
def warehouse(stack: Settings) -> Iterator[Settings]:
    """A scratch warehouse, migrated (so its grants come from the migrations), with one
    airline the roles can try to change."""
    with scratch_database(stack, "flightpipe_test") as scratch:
        with connect(scratch, "loader") as conn:
            conn.execute(
                "INSERT INTO dw.dim_airline (airline_key, carrier_code, name, member_source)"
                " VALUES (dw.member_key('ZZ'), 'ZZ', 'Test Air', 'reference')"
            )
        yield scratch


def refused(settings: Settings, role: str, statement: str) -> bool:
    with connect(settings, role) as conn:  # type: ignore[arg-type]
        try:
            conn.execute(statement)
        except errors.InsufficientPrivilege:
            return True
    return False


def test_each_role_connects_as_itself(warehouse: Settings) -> None:
    for role in ("migrator", "loader", "ml", "reader"):
        with connect(warehouse, role) as conn:  # type: ignore[arg-type]
            row = conn.execute("SELECT current_user").fetchone()
        assert row == (warehouse.role_user(role),)  # type: ignore[arg-type]


def test_reader_reads_but_cannot_write(warehouse: Settings) -> None:
    with connect(warehouse, "reader") as conn:
        assert conn.execute("SELECT count(*) FROM mart.kpi").fetchone() is not None
        assert conn.execute(COUNT_ZZ).fetchone() == (1,)
    for statement in (
        "UPDATE dw.dim_airline SET name = 'x'",
        "INSERT INTO meta.check_results (check_name, passed) VALUES ('x', true)",
        "DELETE FROM ml.model_runs",
        "TRUNCATE staging.flights",
        "SELECT count(*) FROM staging.flights",
        "CREATE TABLE public.reader_table (id int)",
    ):
        assert refused(warehouse, "reader", statement), statement


def test_loader_writes_data_but_cannot_change_the_schema(warehouse: Settings) -> None:
    with connect(warehouse, "loader") as conn:
        conn.execute("UPDATE dw.dim_airline SET name = 'Test Air 2' WHERE carrier_code = 'ZZ'")
        conn.execute("TRUNCATE staging.flights")
        conn.rollback()
    for statement in (
        "DROP TABLE dw.fact_flight",
        "ALTER TABLE dw.dim_airline ADD COLUMN extra int",
        "ALTER TABLE dw.fact_flight DROP CONSTRAINT fact_flight_pkey",
        "CREATE INDEX ON dw.fact_flight (dep_delay_min)",
        "CREATE TABLE dw.loader_table (id int)",
        "INSERT INTO admin.bulk_rebuild VALUES ('fact_flight', 99, 'DROP TABLE dw.dim_date')",
        "INSERT INTO ml.model_runs (algorithm, data_from, data_to, artifact_path,"
        " artifact_sha256) VALUES ('x', '2013-01-01', '2013-01-02', 'x.skops', repeat('0', 64))",
    ):
        assert refused(warehouse, "loader", statement), statement


def test_ml_role_reads_dw_and_cannot_write_it(warehouse: Settings) -> None:
    with connect(warehouse, "ml") as conn:
        assert conn.execute(COUNT_ZZ).fetchone() == (1,)
        conn.execute("DELETE FROM ml.predictions")  # its own schema
        conn.rollback()
    for statement in (
        "UPDATE dw.dim_airline SET name = 'x'",
        "INSERT INTO dw.dim_airline (airline_key, carrier_code, name, member_source)"
        " VALUES (dw.member_key('YY'), 'YY', 'y', 'reference')",
        "DELETE FROM dw.dim_airline",
        "TRUNCATE dw.fact_flight",
        "DROP TABLE ml.predictions",
        "UPDATE meta.replay_cursor SET next_day = '2013-02-01'",
    ):
        assert refused(warehouse, "ml", statement), statement
