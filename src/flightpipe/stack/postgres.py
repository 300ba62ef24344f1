"""A project-local PostgreSQL 15 cluster: installed from Debian packages, own data dir and port."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from flightpipe.settings import DUTY_ROLE_USERS, Settings
from flightpipe.stack.errors import StackError
from flightpipe.stack.secrets import write_private

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")


def is_root() -> bool:
    return os.geteuid() == 0


def server_user() -> str | None:
    """initdb refuses root, so as root the cluster runs as the Debian `postgres` user."""
    return "postgres" if is_root() else None


def install_if_missing() -> None:
    if (PG_BIN / "postgres").exists():
        return
    if not shutil.which("apt-get"):
        raise StackError(
            f"PostgreSQL {PG_VERSION} is not installed and apt-get is not available. Install "
            f"PostgreSQL {PG_VERSION} server binaries into {PG_BIN}, or point "
            "FLIGHTPIPE_DATABASE_URL at an existing server."
        )
    if not is_root():
        raise StackError(
            f"PostgreSQL {PG_VERSION} is not installed. Run: sudo apt-get install -y "
            f"postgresql-{PG_VERSION}   (or set FLIGHTPIPE_DATABASE_URL to an existing server)."
        )
    print(f"Installing PostgreSQL {PG_VERSION} from Debian packages ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", f"postgresql-{PG_VERSION}"],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-10:])
            raise StackError(f"`{' '.join(cmd)}` failed:\n{tail}")


def _can_enter(user: str, path: Path) -> bool:
    result = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)], capture_output=True
    )
    return result.returncode == 0


def cluster_dir(settings: Settings) -> Path:
    """Where the cluster lives: the run folder if the server user can reach it.

    A checkout inside a private folder (mode 700, e.g. from mktemp) cannot be entered by the
    `postgres` user; its cluster then lives under that user's home, named after the checkout.
    """
    preferred = settings.run_dir / "postgres"
    user = server_user()
    if user is None:
        return preferred
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    if _can_enter(user, settings.run_dir):
        return preferred
    tag = hashlib.sha256(str(settings.run_dir).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam(user).pw_dir) / f"flightpipe-{tag}"


def data_dir(settings: Settings) -> Path:
    return cluster_dir(settings) / "data"


def socket_dir(settings: Settings) -> Path:
    return cluster_dir(settings) / "socket"


def as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` run as the server user (as root: through runuser)."""
    user = server_user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def init_cluster(settings: Settings, superuser_password: str) -> bool:
    """initdb once; returns True when a new cluster was created."""
    pgdata = data_dir(settings)
    if (pgdata / "PG_VERSION").exists():
        return False
    root = cluster_dir(settings)
    sock = socket_dir(settings)
    for path in (root, sock):
        path.mkdir(parents=True, exist_ok=True)
    user = server_user()
    if user:
        shutil.chown(root, user, user)
        shutil.chown(sock, user, user)
    pwfile = root / ".pwfile"
    write_private(pwfile, superuser_password + "\n", owner=user)
    try:
        result = subprocess.run(
            as_server_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth-local=peer" if user else "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            capture_output=True,
            text=True,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise StackError(f"initdb failed:\n{result.stderr.strip()}")
    configure_server(settings, pgdata, sock)
    return True


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def configure_server(settings: Settings, pgdata: Path, sock: Path) -> None:
    """Server settings that matter for a small analytical box, on ``pg_host`` only.

    initdb lets password logins in from loopback alone; a server on a network address also
    takes them from the subnets it is attached to (``samenet``), never from beyond.
    """
    if not _loopback(settings.pg_host):
        with (pgdata / "pg_hba.conf").open("a") as hba:
            hba.write("host all all samenet scram-sha-256\n")
    conf = pgdata / "postgresql.auto.conf"
    with conf.open("a") as fh:
        fh.write(
            f"listen_addresses = '{settings.pg_host}'\n"
            f"port = {settings.pg_port}\n"
            f"unix_socket_directories = '{sock}'\n"
            "shared_buffers = '256MB'\n"
            "work_mem = '32MB'\n"
            "maintenance_work_mem = '256MB'\n"
            "max_wal_size = '2GB'\n"
            # No replica or archive reads this log: a table the load creates or truncates
            # in its transaction is then written without WAL and synced once at commit.
            "wal_level = minimal\n"
            "max_wal_senders = 0\n"
            "max_connections = 100\n"
            "logging_collector = off\n"
        )


def server_command(settings: Settings) -> list[str]:
    return [str(PG_BIN / "postgres"), "-D", str(data_dir(settings))]


def superuser_dsn(settings: Settings, password: str, dbname: str = "postgres") -> str:
    return f"postgresql://postgres:{password}@{settings.pg_host}:{settings.pg_port}/{dbname}"


def _ensure_role(
    conn: psycopg.Connection[Any], role: str, password: str, createdb: bool = False
) -> None:
    """Create the login role, or re-sync its password; never a superuser, never CREATEROLE."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEROLE {} PASSWORD {}").format(
            sql.SQL("ALTER") if exists else sql.SQL("CREATE"),
            sql.Identifier(role),
            sql.SQL("CREATEDB") if createdb else sql.SQL("NOCREATEDB"),
            sql.Literal(password),
        )
    )


def _ensure_database(conn: psycopg.Connection[Any], database: str, owner: str) -> None:
    has_db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    if not has_db:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(owner)
            )
        )
    # Only the owner and the roles granted CONNECT may open a session in it (the warehouse's
    # sql/current/30_grants.sql does the same for scratch databases and adds TEMPORARY by duty).
    conn.execute(
        sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(database)
        )
    )


# A session of Airflow's role idle inside a transaction this long is closed by the server.
# Airflow's LocalExecutor workers are forked from the scheduler and inherit its database
# socket: a scheduler killed in the middle of a transaction leaves that session open (the
# workers outlive it and keep the socket), its row locks held, and the next scheduler skips
# the locked runs for good. No Airflow process sits idle in a transaction for long.
AIRFLOW_IDLE_IN_TRANSACTION_S: Final = 60


def bootstrap(settings: Settings, superuser_password: str) -> None:
    """Create (or re-sync the passwords of) the roles by duty and the two databases.

    The migrator (``warehouse_user``) owns the warehouse and may create scratch databases
    for tests; the loader, ML and reader roles get CONNECT here and their table privileges
    from the grant migrations. The Airflow role owns its own database and nothing else.
    """
    with psycopg.connect(superuser_dsn(settings, superuser_password), autocommit=True) as conn:
        _ensure_role(conn, settings.warehouse_user, settings.warehouse_password, createdb=True)
        for duty, role in DUTY_ROLE_USERS.items():
            _ensure_role(conn, role, settings.role_password(duty))
        _ensure_role(conn, settings.airflow_db_user, settings.airflow_db_password)
        conn.execute(
            sql.SQL("ALTER ROLE {} SET idle_in_transaction_session_timeout = {}").format(
                sql.Identifier(settings.airflow_db_user),
                sql.Literal(f"{AIRFLOW_IDLE_IN_TRANSACTION_S}s"),
            )
        )
        _ensure_database(conn, settings.warehouse_db, settings.warehouse_user)
        _ensure_database(conn, settings.airflow_db, settings.airflow_db_user)
        duty_roles = sql.SQL(", ").join(sql.Identifier(r) for r in DUTY_ROLE_USERS.values())
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(settings.warehouse_db), duty_roles
            )
        )
        # The owner already holds every privilege of these roles; membership lets it close
        # their sessions when it drops a scratch database.
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(duty_roles, sql.Identifier(settings.warehouse_user))
        )
    dsn = superuser_dsn(settings, superuser_password, settings.airflow_db)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def probe(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute("SELECT 1, current_setting('server_version')").fetchone()
    assert row is not None
    return f"SELECT 1 ok, PostgreSQL {row[1]}"
