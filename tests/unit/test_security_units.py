"""Secret files, per-role connection settings and loopback-only service flags, without
running services."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flightpipe.settings import DUTY_ROLE_USERS, ROLES, Settings
from flightpipe.stack import services
from flightpipe.stack.secrets import (
    LEGACY_SUPERUSER_KEY,
    SUPERUSER_KEY,
    ensure_secrets,
    ensure_setup_secrets,
    read_secrets,
    write_private,
)
from flightpipe.warehouse.db import database_environment, on_database, psql_environment


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_replaces_a_readable_file_with_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("old")
    path.chmod(0o644)
    old_umask = os.umask(0)  # the most permissive umask must not widen the mode
    try:
        write_private(path, "new secret")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "new secret"
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["conf"], "no temporary file left"


def test_superuser_password_moves_out_of_the_task_secrets(tmp_path: Path) -> None:
    secrets_file, setup_file = tmp_path / "secrets.env", tmp_path / "setup-secrets.env"
    secrets_file.write_text(f"{LEGACY_SUPERUSER_KEY}=the-old-one\nOTHER=x\n")
    setup = ensure_setup_secrets(secrets_file, setup_file)
    assert setup[SUPERUSER_KEY] == "the-old-one", "the cluster's password is kept, not renewed"
    assert read_secrets(secrets_file) == {"OTHER": "x"}
    assert mode(setup_file) == mode(secrets_file) == 0o600
    assert ensure_setup_secrets(secrets_file, setup_file) == setup
    assert SUPERUSER_KEY not in ensure_secrets(secrets_file)
    assert "pg_superuser_password" not in Settings.model_fields


def test_each_role_has_its_own_local_credentials() -> None:
    settings = Settings(
        database_url=None,
        warehouse_password="m",
        loader_password="l",
        ml_password="x",
        reader_password="r",
    )
    users = {role: settings.role_user(role) for role in ROLES}
    assert users == {"migrator": settings.warehouse_user, **DUTY_ROLE_USERS}
    for role, password in zip(ROLES, "mlxr", strict=True):
        assert settings.dsn(role) == (
            f"postgresql://{users[role]}:{password}@127.0.0.1:{settings.pg_port}/warehouse"
        )
    assert settings.warehouse_dsn == settings.dsn("migrator")


def test_external_warehouse_falls_back_to_the_one_url() -> None:
    one = "postgresql://u:p@127.0.0.9:5432/w"
    settings = Settings(database_url=one, database_url_reader="postgresql://r:q@127.0.0.9/w")
    assert [settings.dsn(r) for r in ROLES] == [one, one, one, "postgresql://r:q@127.0.0.9/w"]


def test_a_scratch_database_keeps_every_role_apart() -> None:
    settings = Settings(database_url=None, loader_password="l", reader_password="r")
    scratch = on_database(settings, "scratch_1")
    assert scratch.dsn("loader").startswith("postgresql://flightpipe_loader:l@")
    assert all(scratch.dsn(r).endswith("/scratch_1") for r in ROLES)
    env = database_environment(scratch)
    assert env["FLIGHTPIPE_DATABASE_URL_READER"] == scratch.dsn("reader")
    assert Settings(**{k.removeprefix("FLIGHTPIPE_").lower(): v for k, v in env.items()}).dsn(
        "ml"
    ) == scratch.dsn("ml")


def test_psql_gets_its_password_through_the_environment() -> None:
    env = psql_environment(Settings(database_url=None, reader_password="r"))
    assert env["PGUSER"] == "flightpipe_reader" and env["PGPASSWORD"] == "r"
    assert env["PGHOST"] == "127.0.0.1" and env["PGDATABASE"] == "warehouse"


@pytest.mark.parametrize("program", ["airflow-scheduler", "airflow-triggerer"])
def test_airflow_log_servers_are_not_started(tmp_path: Path, program: str) -> None:
    progs = {p.name: p for p in services.programs(Settings(run_dir=tmp_path), {})}
    assert "--skip-serve-logs" in progs[program].command


def test_dask_worker_dashboards_bind_loopback(tmp_path: Path) -> None:
    progs = services.programs(Settings(run_dir=tmp_path, dask_workers=2), {})
    workers = [p.command for p in progs if p.name.startswith("dask-worker")]
    assert len(workers) == 2
    for command in workers:
        assert command[command.index("--dashboard-address") + 1] == "127.0.0.1:0"
        assert command[command.index("--host") + 1] == "127.0.0.1"
