"""A project-local PostgreSQL 15 cluster: installed from Debian packages, own data dir and port."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from flightpipe.settings import Settings
from flightpipe.stack.errors import StackError

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


def _as_server_user(cmd: list[str]) -> list[str]:
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
    pwfile.write_text(superuser_password + "\n")
    os.chmod(pwfile, 0o600)
    if user:
        shutil.chown(pwfile, user, user)
    try:
        result = subprocess.run(
            _as_server_user(
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
    # Settings that matter for a small analytical box; loopback only.
    conf = pgdata / "postgresql.auto.conf"
    with conf.open("a") as fh:
        fh.write(
            "listen_addresses = '127.0.0.1'\n"
            f"port = {settings.pg_port}\n"
            f"unix_socket_directories = '{sock}'\n"
            "shared_buffers = '256MB'\n"
            "work_mem = '32MB'\n"
            "maintenance_work_mem = '256MB'\n"
            "max_wal_size = '2GB'\n"
            "max_connections = 100\n"
            "logging_collector = off\n"
        )
    return True


def server_command(settings: Settings) -> list[str]:
    return [str(PG_BIN / "postgres"), "-D", str(data_dir(settings))]


def superuser_dsn(settings: Settings, password: str, dbname: str = "postgres") -> str:
    return f"postgresql://postgres:{password}@{settings.pg_host}:{settings.pg_port}/{dbname}"


def bootstrap(settings: Settings, superuser_password: str) -> None:
    """Create (or re-sync the passwords of) the warehouse and Airflow roles and databases."""
    wanted = [
        (settings.warehouse_user, settings.warehouse_password, settings.warehouse_db, True),
        (settings.airflow_db_user, settings.airflow_db_password, settings.airflow_db, False),
    ]
    with psycopg.connect(superuser_dsn(settings, superuser_password), autocommit=True) as conn:
        for role, password, database, createdb in wanted:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN {} PASSWORD {}").format(
                    verb,
                    sql.Identifier(role),
                    sql.SQL("CREATEDB") if createdb else sql.SQL("NOCREATEDB"),
                    sql.Literal(password),
                )
            )
            has_db = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not has_db:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )


def probe(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute("SELECT 1, current_setting('server_version')").fetchone()
    assert row is not None
    return f"SELECT 1 ok, PostgreSQL {row[1]}"
