"""The staging tables, built from the data contract.

Staging is scratch space (UNLOGGED, emptied by every load), so its tables are not history
to migrate: they are (re)created from each entity's declared staging columns whenever the
catalog differs from the contract; the resolved views over them
(``sql/current/10_staging_views.sql``) are then re-applied by :mod:`flightpipe.warehouse.current`.
Called after every migration run; a no-op when current.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from flightpipe.contract import ENTITIES, Entity

SCHEMA: Final = "staging"
# Serialises concurrent rebuilds (two migrate runs at once); any constant of our own.
STAGING_LOCK_ID: Final = 0x73746167  # "stag"
# The catalog's spelling of the contract's type names.
_CATALOG_TYPE: Final = {"timestamptz": "timestamp with time zone"}


def _catalog_columns(cur: psycopg.Cursor[Any], table: str) -> list[tuple[str, str, bool]]:
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
        FROM pg_attribute AS a
        WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [f"{SCHEMA}.{table}"],
    )
    return [(name, typ, nullable) for name, typ, nullable in cur.fetchall()]


def _declared_columns(entity: Entity) -> list[tuple[str, str, bool]]:
    return [(c.name, _CATALOG_TYPE.get(c.pg_type, c.pg_type), c.nullable) for c in entity.staging]


def create_table_sql(entity: Entity) -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name),
            sql.SQL(c.pg_type),  # a type name of the contract, never input
            sql.SQL("" if c.nullable else " NOT NULL"),
        )
        for c in entity.staging
    )
    return sql.SQL("CREATE UNLOGGED TABLE {}.{} ({})").format(
        sql.Identifier(SCHEMA), sql.Identifier(entity.name), columns
    )


def stale_tables(cur: psycopg.Cursor[Any]) -> list[str]:
    """Staging tables whose catalog shape is not the contract's (missing ones included)."""
    return [
        name
        for name, entity in ENTITIES.items()
        if _catalog_columns(cur, name) != _declared_columns(entity)
    ]


def ensure_staging(conn: psycopg.Connection[Any]) -> list[str]:
    """Rebuild the staging tables that differ from the contract (dropping the resolved
    views over them, which the caller re-applies); returns the tables rebuilt. Commits."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [STAGING_LOCK_ID])
        stale = stale_tables(cur)
        if not stale:
            return []
        cur.execute("DROP VIEW IF EXISTS staging.flights_resolved, staging.weather_resolved")
        for name in stale:
            entity = ENTITIES[name]
            table = sql.Identifier(SCHEMA, name)
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            cur.execute(create_table_sql(entity))
            cur.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    table,
                    sql.Literal(
                        f"Staged {name} rows of the current load batch; columns from the "
                        "data contract (flightpipe.contract)."
                    ),
                )
            )
    return stale
