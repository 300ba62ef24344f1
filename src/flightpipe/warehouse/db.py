"""Connections, packaged SQL files and binary COPY of pandas frames."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from flightpipe.settings import Settings

SQL_PACKAGE = "flightpipe.warehouse"
# Any constant works; it only has to be the same for every loader of this warehouse.
LOAD_LOCK_ID = 0x666C6967  # "flig"


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    return psycopg.connect(
        settings.warehouse_dsn, autocommit=autocommit, application_name="flightpipe"
    )


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


def _column_values(series: pd.Series, pg_type: str) -> list[Any]:
    """Python values for psycopg: NA -> None, dates as ``date``, numpy scalars unboxed."""
    present = series.notna().to_numpy()
    if pg_type == "date":
        values = series.dt.date.astype(object)
    elif isinstance(series.dtype, pd.DatetimeTZDtype):
        if pg_type == "timestamp":
            # Staging holds UTC as naive timestamps: much cheaper to COPY (migration 0008).
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        values = pd.Series(series.dt.to_pydatetime(), index=series.index, dtype=object)
    else:
        values = series.astype(object)
    out = values.tolist()
    if not present.all():
        for i in (~present).nonzero()[0]:
            out[i] = None
    return out


def frame_rows(
    frame: pd.DataFrame, columns: Sequence[str], types: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    cols = [_column_values(frame[c], t) for c, t in zip(columns, types, strict=True)]
    return zip(*cols, strict=True)


def copy_frame(cur: psycopg.Cursor[Any], schema: str, table: str, frame: pd.DataFrame) -> int:
    """Binary COPY of ``frame`` into ``schema.table`` (columns matched by name)."""
    if frame.empty:
        return 0
    catalog = column_types(cur, schema, table)
    columns = [c for c in catalog if c in frame.columns]
    types = [catalog[c] for c in columns]
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    with cur.copy(stmt) as copy:
        copy.set_types(types)
        for row in frame_rows(frame, columns, types):
            copy.write_row(row)
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
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        scratch = settings.model_copy(
            update={"database_url": with_database(settings.warehouse_dsn, name)}
        )
        if migrated:
            migrate(scratch)
        yield scratch
    finally:
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
