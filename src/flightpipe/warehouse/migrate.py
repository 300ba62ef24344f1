"""Versioned schema migrations, applied with yoyo-migrations.

The migrations are plain ``.sql`` files shipped inside the package (``migrations/``), each
with a ``-- depends:`` header. yoyo records what it applied (tables ``_yoyo_*`` in the
``public`` schema) and takes a lock, so :func:`migrate` is safe to run twice or concurrently.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from yoyo import get_backend, read_migrations

from flightpipe.settings import Settings, get_settings

MIGRATIONS_PACKAGE = "flightpipe.warehouse"


def migrations_dir() -> Path:
    """Directory holding the versioned ``.sql`` migrations."""
    return Path(str(resources.files(MIGRATIONS_PACKAGE) / "migrations"))


def yoyo_url(dsn: str) -> str:
    """yoyo picks its driver from the URL scheme; ``postgresql+psycopg`` selects psycopg 3."""
    for prefix in (
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    raise ValueError("warehouse DSN must be a postgresql:// URL")


def pending(settings: Settings | None = None) -> list[str]:
    """Ids of the migrations not applied yet."""
    settings = settings or get_settings()
    backend = get_backend(yoyo_url(settings.dsn("migrator")))
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(migrations_dir())))]
    finally:
        backend.connection.close()


def migrate(settings: Settings | None = None) -> list[str]:
    """Apply every pending migration, then build the staging tables from the contract and
    the current-state views and grants; return the migration ids applied (empty when up to
    date)."""
    from flightpipe.warehouse.current import apply_current
    from flightpipe.warehouse.db import connect
    from flightpipe.warehouse.staging import ensure_staging

    settings = settings or get_settings()
    backend = get_backend(yoyo_url(settings.dsn("migrator")))
    try:
        migrations = read_migrations(str(migrations_dir()))
        with backend.lock():
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
    finally:
        backend.connection.close()
    with connect(settings, "migrator") as conn:
        rebuilt = ensure_staging(conn)
        views = frozenset({"10_staging_views.sql"} if rebuilt else ())
        apply_current(conn, force=views)
    return [m.id for m in todo]
