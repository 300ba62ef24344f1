"""Connections, packaged SQL files and COPY of pandas frames."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
from psycopg import sql

from flightpipe.settings import DUTY_ROLE_USERS, Role, Settings
from flightpipe.waiting import wait_until
from flightpipe.warehouse import binary_copy

SQL_PACKAGE = "flightpipe.warehouse"
# Any constant works; it only has to be the same for every loader of this warehouse.
LOAD_LOCK_ID = 0x666C6967  # "flig"
TRANSFORM_LOCK_ID = LOAD_LOCK_ID + 1  # one transform at a time, beside the loads

# (statement_timeout, lock_timeout) in seconds per role. Generous for the batch duties (a
# whole-year load takes seconds) but finite, so a hung statement or a lock queue behind a
# stuck session fails the task, whose retry then starts clean. Readers serve people and
# dashboards: short.
ROLE_TIMEOUTS: dict[Role, tuple[int, int]] = {
    "migrator": (600, 60),
    "loader": (900, 60),
    "ml": (900, 60),
    "reader": (120, 10),
}


def connect(
    settings: Settings, role: Role, *, autocommit: bool = False, **kwargs: Any
) -> psycopg.Connection[Any]:
    """The one way into the warehouse: a connection as ``role``, the smallest role a duty
    needs (loader: staging, dw and meta writes; ml: reads dw, writes ml; reader: SELECT for
    reports and shells; migrator: migrations and scratch databases only)."""
    statement_s, lock_s = ROLE_TIMEOUTS[role]
    options = f"-c statement_timeout={statement_s}s -c lock_timeout={lock_s}s"
    kwargs.setdefault("connect_timeout", settings.pg_connect_timeout)
    return psycopg.connect(
        settings.dsn(role),
        autocommit=autocommit,
        application_name=f"flightpipe-{role}",
        options=options,
        **kwargs,
    )


class LockTimeout(RuntimeError):
    """Another session held an advisory lock past the wait allowed for it."""


@contextmanager
def advisory_lock(
    conn: psycopg.Connection[Any], lock_id: int, *, what: str, timeout: float
) -> Iterator[None]:
    """Hold session-level advisory lock ``lock_id`` on ``conn`` (autocommit) for the block.

    A try-lock polled up to ``timeout`` seconds, never an unbounded wait: a task stuck behind
    another run fails with a message that names it, and its retry tries again.
    """

    def take() -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_id]).fetchone()
        return bool(row and row[0])

    wait_until(
        take,
        what=f"the {what} lock (another {what} is running)",
        timeout=timeout,
        interval=0.5,
        error=LockTimeout,
    )
    try:
        yield
    finally:
        # A session that died released the lock with it; its error is the one to report.
        with suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s)", [lock_id])


def psql_environment(settings: Settings, role: Role = "reader") -> dict[str, str]:
    """libpq variables that point psql at the warehouse as ``role``: the password travels in
    the environment (private to the process), never on a command line (world-readable)."""
    parts = psycopg.conninfo.conninfo_to_dict(settings.dsn(role))
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
    }
    return {env: str(parts[key]) for key, env in names.items() if parts.get(key)}


def sql_file(name: str) -> str:
    """Text of a packaged SQL file, ``sql/<name>``."""
    return (resources.files(SQL_PACKAGE) / "sql" / name).read_text(encoding="utf-8")


def load_steps() -> list[tuple[str, str]]:
    """(step name, statement) of the load transaction, in file-name order."""
    folder = resources.files(SQL_PACKAGE) / "sql"
    names = sorted(
        p.name for p in folder.iterdir() if p.name[:2].isdigit() and p.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql_file(name)) for name in names]


def column_types(cur: psycopg.Cursor[Any], schema: str, table: str) -> dict[str, str]:
    """Column -> type name, straight from the catalog, so COPY and the DDL cannot drift."""
    cur.execute(
        """
        SELECT a.attname, t.typname
        FROM pg_attribute AS a
        JOIN pg_type AS t ON t.oid = a.atttypid
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [f"{schema}.{table}"],
    )
    return {name: typ for name, typ in cur.fetchall()}


def _arrow_column(series: pd.Series, pg_type: str) -> pa.Array | pa.ChunkedArray:
    """One column as Arrow, vectorised: NA/NaN -> null."""
    values = pa.array(series, from_pandas=True)
    if pg_type == "date" and pa.types.is_timestamp(values.type):
        values = values.cast(pa.date32(), safe=False)  # the calendar day, like ``.dt.date``
    return values


def frame_table(frame: pd.DataFrame, columns: Sequence[str], types: Sequence[str]) -> pa.Table:
    """``frame``'s columns as one Arrow table, vectorised (see :func:`_arrow_column`)."""
    return pa.table(
        [_arrow_column(frame[c], t) for c, t in zip(columns, types, strict=True)],
        names=list(columns),
    )


def copy_frame(
    cur: psycopg.Cursor[Any],
    schema: str,
    table: str,
    frame: pd.DataFrame,
    types: Mapping[str, str] | None = None,
) -> int:
    """Binary COPY of ``frame`` into ``schema.table`` (columns matched by name), encoded
    column-wise from Arrow by :mod:`~flightpipe.warehouse.binary_copy`: no per-value Python
    conversion, and the server parses no text. Rows arrive in no particular order (they are
    sent grouped by layout). ``types`` (column -> PostgreSQL type, in
    table order) saves the catalog lookup when the caller declares the table (staging: the
    data contract)."""
    if frame.empty:
        return 0
    catalog = dict(types) if types is not None else column_types(cur, schema, table)
    columns = [c for c in catalog if c in frame.columns]
    pg_types = [catalog[c] for c in columns]
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    with cur.copy(stmt) as copy:
        for chunk in binary_copy.encode(frame_table(frame, columns, pg_types), pg_types):
            copy.write(chunk)
    return len(frame)


def with_database(dsn: str, dbname: str) -> str:
    """``dsn`` (URL or key=value form) pointing at another database, as a URL.

    URLs because the migration runner (yoyo) accepts nothing else.
    """
    from urllib.parse import quote

    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(parts.get("user", "")), safe="")
    password = parts.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", 5432)
    return f"postgresql://{auth}{host}:{port}/{quote(dbname, safe='')}"


def on_database(settings: Settings, name: str) -> Settings:
    """``settings`` with every role pointed at database ``name`` on the same server, each
    with its own credentials (so the grant migrations are exercised there too)."""
    update: dict[str, str] = {"database_url": with_database(settings.dsn("migrator"), name)}
    for role in DUTY_ROLE_USERS:
        update[f"database_url_{role}"] = with_database(settings.dsn(role), name)
    return settings.model_copy(update=update)


def database_environment(settings: Settings) -> dict[str, str]:
    """The FLIGHTPIPE_DATABASE_URL* variables of ``settings``' warehouse, for processes that
    build their own Settings (tests export a scratch database this way)."""
    env = {"FLIGHTPIPE_DATABASE_URL": settings.dsn("migrator")}
    for role in DUTY_ROLE_USERS:
        env[f"FLIGHTPIPE_DATABASE_URL_{role.upper()}"] = settings.dsn(role)
    return env


@contextmanager
def scratch_database(
    settings: Settings, prefix: str = "flightpipe_scratch", *, migrated: bool = True
) -> Iterator[Settings]:
    """A fresh database on the warehouse server (migrated unless told otherwise), as Settings
    that point at it; dropped, connections and all, on exit. For tests, benchmarks and the
    schema diagram, which must never touch the working warehouse."""
    from flightpipe.warehouse.migrate import migrate

    name = f"{prefix}_{secrets.token_hex(5)}"
    ident = sql.Identifier(name)
    with connect(settings, "migrator", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        scratch = on_database(settings, name)
        if migrated:
            migrate(scratch)
        yield scratch
    finally:
        drop_database(settings, name)


def drop_database(settings: Settings, name: str) -> None:
    """Drop ``name``, closing connections left open to it.

    FORCE terminates our own sessions and those of the duty roles (the migrator is a member
    of each, see ``stack.postgres.bootstrap``), but PostgreSQL 15 refuses it while an autovacuum
    worker (no role) is in the database; a plain DROP makes autovacuum yield and waits for it.
    """
    ident = sql.Identifier(name)
    with connect(settings, "migrator", autocommit=True) as admin:
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        except psycopg.errors.InsufficientPrivilege:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                " AND pg_has_role(current_user, usename, 'USAGE') AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
