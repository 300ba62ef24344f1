"""Where a batch ingest run stops: its end-offset snapshot, shared through the warehouse.

The consumer members of a run start together with its producers, so ingest costs about the
longer of the two rather than their sum. Nobody knows where the run ends until every
producer has finished; then one step takes the end offsets (the snapshot) and publishes it
under the run's key, and each member, polling, stops exactly there. What arrives after the
snapshot is the next run's. The warehouse is the channel because every task of a run
reaches it already (the replay cursor lives there), from any host.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

import psycopg

from flightpipe.ingest.consume import Snapshot, decode_snapshot, encode_snapshot
from flightpipe.ingest.topics import IngestError
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

log = logging.getLogger(__name__)

# Runs older than this are forgotten when a new one opens (they are finished or abandoned).
KEEP_DAYS: Final = 7


def open_run(settings: Settings) -> str:
    """A new run key, registered with no snapshot yet."""
    key = uuid.uuid4().hex
    with connect(settings, "loader") as conn:
        conn.execute(
            "DELETE FROM meta.ingest_runs WHERE opened_at < now() - make_interval(days => %s)",
            (KEEP_DAYS,),
        )
        conn.execute("INSERT INTO meta.ingest_runs (run_key) VALUES (%s)", (key,))
    return key


def publish(settings: Settings, key: str, snapshot: Snapshot) -> None:
    """Tell the run's members where to stop (again with the same value is harmless)."""
    # As the consumers' own text form: partition keys become JSON strings either way.
    with connect(settings, "loader") as conn:
        cur = conn.execute(
            "UPDATE meta.ingest_runs SET snapshot = %s::jsonb, published_at = now() "
            "WHERE run_key = %s",
            (encode_snapshot(snapshot), key),
        )
        if cur.rowcount == 0:
            raise IngestError(f"no ingest run {key!r} to publish a snapshot for")


class StopReader:
    """Polls the run's snapshot for a consumer member; one connection, opened on first use."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.settings = settings
        self.key = key
        self._conn: psycopg.Connection[Any] | None = None

    def poll(self) -> dict[str, dict[int, int]] | None:
        """The snapshot once published, else None (also while the warehouse is unreachable)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.settings, "loader", autocommit=True)
            row = self._conn.execute(
                "SELECT snapshot::text FROM meta.ingest_runs WHERE run_key = %s", (self.key,)
            ).fetchone()
        except psycopg.OperationalError as exc:
            log.warning("cannot read the stop snapshot of run %s yet: %s", self.key, exc)
            self.close()
            return None
        if row is None:
            raise IngestError(f"no ingest run {self.key!r}: open one first (plan_slice)")
        return None if row[0] is None else decode_snapshot(row[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
