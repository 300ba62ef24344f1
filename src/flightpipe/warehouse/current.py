"""SQL that describes current state, not history: views and grants, kept in ``sql/current/``.

Migrations are history: once applied, never edited. A view or a grant is different: the
file says what should exist now. After every migration run, each file here whose fingerprint
differs from the one recorded in ``admin.applied_sql`` is applied, in name order, in one
transaction. The grants' fingerprint includes which duty roles exist, so roles created after
the first migration get their privileges on the next run; once anything is applied the grants
follow, since a rebuilt view loses its privileges.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any, Final

import psycopg

from flightpipe.settings import DUTY_ROLE_USERS
from flightpipe.warehouse.db import SQL_PACKAGE

# Serialises concurrent runs (two migrate tasks at once); any constant of our own.
CURRENT_LOCK_ID: Final = 0x63757272  # "curr"
GRANTS: Final = "30_grants.sql"


def files() -> list[tuple[str, str]]:
    """(name, text) of every current-state file, in the order they are applied."""
    folder = resources.files(SQL_PACKAGE) / "sql" / "current"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(n, (folder / n).read_text(encoding="utf-8")) for n in names]


def _fingerprint(cur: psycopg.Cursor[Any], name: str, text: str) -> str:
    digest = hashlib.sha256(text.encode())
    if name == GRANTS:
        cur.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
            [list(DUTY_ROLE_USERS.values())],
        )
        digest.update(repr([r[0] for r in cur.fetchall()]).encode())
    return digest.hexdigest()


def apply_current(
    conn: psycopg.Connection[Any], *, force: frozenset[str] = frozenset()
) -> list[str]:
    """Apply the files that changed (and those named in ``force``); returns their names."""
    applied: list[str] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [CURRENT_LOCK_ID])
        cur.execute("SELECT name, fingerprint FROM admin.applied_sql")
        recorded = dict(cur.fetchall())
        for name, text in files():
            fingerprint = _fingerprint(cur, name, text)
            due = name in force or (name == GRANTS and applied)
            if not due and recorded.get(name) == fingerprint:
                continue
            cur.execute(text)
            cur.execute(
                "INSERT INTO admin.applied_sql (name, fingerprint) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE"
                " SET fingerprint = excluded.fingerprint, applied_at = now()",
                [name, fingerprint],
            )
            applied.append(name)
    return applied
