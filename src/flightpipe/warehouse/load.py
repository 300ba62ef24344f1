"""Transform new landing files with Dask into the clean zone, then load clean batches.

Two steps, one DAG each (``flightpipe_transform``, ``flightpipe_load``):

* :func:`transform`: the committed landing files not loaded yet (all of them with ``force``)
  through the Dask graph (clean, UTC times, flags, dedupe, weather join), published as one
  clean batch (``zones/clean.py``);
* :func:`load_pending`: per pending clean batch, an audit row in ``meta.load_batches``
  (committed at once, so failures stay visible), then ONE transaction: COPY into
  ``staging`` (binary), guarded upserts of dimensions, the quarantine of rows that break a
  rule of the contract, the facts (``sql/NN_*.sql``: a guarded update of the rows already
  in dw, a plain insert of the new ones), the loaded files, rejected rows and audit counts,
  then the data checks, scoped to the rows the batch wrote; a failed check rolls everything
  back and raises :class:`DataCheckError`, and the batch stays pending.

A failed load retries without redoing Dask. Loads are serialised with an advisory lock (they
share the staging tables). Re-running with the same files changes nothing in ``dw``: upserts
compare values and skip equal rows, and surrogate keys are a function of the natural key
(migration 0023), so every reload, in any order, gives every row the same key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from flightpipe.contract import TOPICS, entity
from flightpipe.settings import Settings, get_settings
from flightpipe.storage import storage_options
from flightpipe.transform import clean, graph
from flightpipe.transform.client import dask_client
from flightpipe.warehouse import checks, freshness
from flightpipe.warehouse.db import (
    LOAD_LOCK_ID,
    TRANSFORM_LOCK_ID,
    advisory_lock,
    connect,
    copy_frame,
    load_steps,
)
from flightpipe.warehouse.rules import quarantine
from flightpipe.zones.clean import (
    CleanBatch,
    pending_batches,
    read_batch,
    remove_batch,
    write_batch,
)
from flightpipe.zones.landing import LandedFile, discover, read_columns

log = logging.getLogger(__name__)

# Target table of each load step and how its row count reads: a MERGE's count is inserted
# plus updated (split by counting the small dimension before and after), an INSERT's is
# inserted, an UPDATE's updated.
STEP_TARGETS = {
    "01_dim_date": ("dim_date", "insert"),
    "02_dim_airline": ("dim_airline", "merge"),
    "03_dim_airport": ("dim_airport", "merge"),
    "04_dim_plane": ("dim_plane", "merge"),
    "05_infer_airline": ("dim_airline", "insert"),
    "06_infer_airport": ("dim_airport", "insert"),
    "07_infer_plane": ("dim_plane", "insert"),
    "08_fact_weather_changed": ("fact_weather_hourly", "update"),
    "09_fact_weather_new": ("fact_weather_hourly", "insert"),
    "10_fact_flight_changed": ("fact_flight", "update"),
    "11_fact_flight_new": ("fact_flight", "insert"),
    "12_flight_weather_backfill": ("fact_flight", "update"),
}


@dataclass
class LoadResult:
    """What a load run did; ``batch_id`` is None when there was nothing new to load."""

    batch_id: int | None
    status: str
    files: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    checks: list[checks.CheckResult] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(c["loaded"] for c in self.counts.values())

    @property
    def rows_changed(self) -> int:
        return sum(c["inserted"] + c["updated"] for c in self.changes.values())


def _loaded_paths(cur: psycopg.Cursor[Any]) -> set[str]:
    cur.execute("SELECT path FROM meta.landing_files")
    return {row[0] for row in cur.fetchall()}


def _tz_map(
    cur: psycopg.Cursor[Any],
    airport_files: Sequence[LandedFile],
    options: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Airport -> IANA zone for the UTC conversion: warehouse first, this batch's reference
    on top (so a first load already uses the reference zones), airportsdata as last resort
    inside the transform."""
    cur.execute("SELECT faa_code, tzone FROM dw.dim_airport WHERE tzone IS NOT NULL")
    zones = {code: tz for code, tz in cur.fetchall()}
    if airport_files:
        raw = read_columns([f.path for f in airport_files], entity("airports").raw_columns, options)
        ref = clean.clean_airports(raw)
        ref = ref[ref["_reject"].isna() & ref["tzone"].notna()]
        zones.update(zip(ref["faa"], ref["tzone"], strict=True))
    return zones


def _airport_candidates(result: graph.TransformResult, known: set[str]) -> pd.DataFrame:
    """airportsdata rows for codes the batch uses that neither dw nor the batch reference has."""
    used: set[str] = set()
    flights = result.staged("flights")
    used.update(flights["origin"].dropna().unique(), flights["dest"].dropna().unique())
    used.update(result.staged("weather")["origin"].dropna().unique())
    reference = set(result.staged("airports")["faa"])
    rows = []
    for code in sorted(used - known - reference):
        entry = clean._airportsdata().get(code)
        if entry is None:
            continue
        rows.append(
            {
                "faa": code,
                "name": entry.get("name") or code,
                "latitude": entry.get("lat"),
                "longitude": entry.get("lon"),
                # airportsdata gives the elevation in feet.
                "altitude_ft": None
                if entry.get("elevation") is None
                else round(entry["elevation"]),
                "tzone": entry.get("tz") or None,
                "tzone_source": "airportsdata" if entry.get("tz") else None,
                "member_source": "airportsdata",
            }
        )
    frame = pd.DataFrame(rows, columns=entity("airports").staging_columns)
    return frame.astype({"altitude_ft": "Int32"})


def _offsets(files: Sequence[LandedFile]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for f in files:
        p = out.setdefault(f.topic, {}).setdefault(
            str(f.partition), {"first": f.first_offset, "last": f.last_offset, "files": 0}
        )
        p["first"] = min(p["first"], f.first_offset)
        p["last"] = max(p["last"], f.last_offset)
        p["files"] += 1
    return out


def _count(cur: psycopg.Cursor[Any], table: str) -> int:
    cur.execute(f"SELECT count(*) FROM dw.{table}")  # a dimension named in STEP_TARGETS
    row = cur.fetchone()
    return int(row[0]) if row else 0


# Bulk mode: per-row foreign-key triggers and index maintenance dominate big upserts (whole
# year: 13.4 s, of which 7.8 s FK triggers). Above the threshold the facts' foreign keys,
# unique constraints and secondary indexes are dropped and re-created inside the load
# transaction: re-adding a foreign key validates it with one set-based anti-join (~0.07 s
# each) and the whole upsert takes ~4 s.
# The price is an exclusive lock on the fact table until commit, hence only for big batches.
BULK_MIN_ROWS = 10_000
BULK_MIN_SHARE = 0.10
# New rows of a fact in this batch (key not in dw yet): what the triggers would cost.
NEW_ROWS = {
    "fact_weather_hourly": """
        SELECT count(*) FROM staging.weather AS s WHERE NOT EXISTS (
            SELECT 1 FROM dw.fact_weather_hourly AS w
            WHERE w.airport_key = dw.member_key(s.origin)
              AND w.observed_at = s.observed_at)""",
    "fact_flight": """
        SELECT count(*) FROM staging.flights AS s WHERE NOT EXISTS (
            SELECT 1 FROM dw.fact_flight AS f
            WHERE f.flight_key = dw.flight_key(s.year, s.month, s.day, s.carrier,
                                               s.flight_number, s.origin))""",
}


def _bulk_tables(cur: psycopg.Cursor[Any]) -> list[str]:
    tables = []
    for table, query in NEW_ROWS.items():
        cur.execute(query)
        row = cur.fetchone()
        new = int(row[0]) if row else 0
        if new >= BULK_MIN_ROWS and new >= BULK_MIN_SHARE * checks.estimate(cur, table):
            tables.append(table)
    return tables


def _drop_fk_and_indexes(cur: psycopg.Cursor[Any], table: str) -> None:
    """Drop the table's foreign keys, unique constraints (not the primary key, which
    ml.predictions references) and plain indexes until :func:`_restore_fk_and_indexes`.
    Re-adding a unique constraint checks the natural key over the whole table in one index
    build. The DDL runs as the table's owner inside a function (migration 0020): the loader
    itself may not alter dw tables. An empty table also gets a new file (migration 0045),
    which the server then fills without write-ahead logging when ``wal_level`` is minimal."""
    cur.execute("SELECT dw.bulk_drop_indexes(%s)", [table])
    cur.execute("SELECT dw.bulk_fresh_storage(%s)", [table])


def _restore_fk_and_indexes(cur: psycopg.Cursor[Any], table: str) -> None:
    """Re-create what :func:`_drop_fk_and_indexes` dropped, then ANALYZE the table."""
    cur.execute("SELECT dw.bulk_restore_indexes(%s)", [table])


def _run_steps(
    cur: psycopg.Cursor[Any], batch_id: int
) -> tuple[dict[str, dict[str, int]], list[str], dict[str, int]]:
    """Execute the upsert statements (dimensions, then facts); return rows inserted and
    updated per target table, the fact tables loaded in bulk mode, and the staged rows
    quarantined per entity."""
    changes: dict[str, dict[str, int]] = {}
    bulk: list[str] | None = None
    quarantined: dict[str, int] = {}
    for step, statement in load_steps():
        target, kind = STEP_TARGETS[step]
        if bulk is None and target.startswith("fact_"):
            # Once the dimensions are in: the rules see the airports' zones.
            quarantined = quarantine(cur, batch_id)
            bulk = _bulk_tables(cur)
            for table in bulk:
                _drop_fk_and_indexes(cur, table)
        before = _count(cur, target) if kind == "merge" else 0
        t0 = time.perf_counter()
        cur.execute(statement, {"batch_id": batch_id})
        affected = max(cur.rowcount, 0)
        inserted = {"merge": _count(cur, target) - before, "insert": affected}.get(kind, 0)
        c = changes.setdefault(target, {"inserted": 0, "updated": 0})
        c["inserted"] += inserted
        c["updated"] += affected - inserted
        log.debug("step %s: %d rows in %.3f s", step, affected, time.perf_counter() - t0)
    for table in bulk or []:
        t0 = time.perf_counter()
        _restore_fk_and_indexes(cur, table)
        log.debug("restore %s in %.3f s", table, time.perf_counter() - t0)
    return changes, bulk or [], quarantined


def _stage(cur: psycopg.Cursor[Any], result: graph.TransformResult, known: set[str]) -> None:
    cur.execute("TRUNCATE " + ", ".join(f"staging.{t}" for t in TOPICS))  # contract names
    for topic in TOPICS:
        copy_frame(cur, "staging", topic, result.staged(topic), _staging_types(topic))
    candidates = _airport_candidates(result, known)
    copy_frame(cur, "staging", "airports", candidates, _staging_types("airports"))


def _staging_types(topic: str) -> dict[str, str]:
    return {c.name: c.pg_type for c in entity(topic).staging}


def _record_files(
    cur: psycopg.Cursor[Any], files: Sequence[LandedFile], rows: Mapping[str, int], batch_id: int
) -> None:
    # A forced reload keeps the batch that first loaded a file.
    cur.executemany(
        "INSERT INTO meta.landing_files (path, topic, kafka_partition, first_offset,"
        " last_offset, rows, bytes, batch_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (path) DO NOTHING",
        [
            (
                f.rel,
                f.topic,
                f.partition,
                f.first_offset,
                f.last_offset,
                rows.get(f.rel, 0),
                f.bytes,
                batch_id,
            )
            for f in files
        ],
    )


def _record_rejects(cur: psycopg.Cursor[Any], result: graph.TransformResult, batch_id: int) -> None:
    params = []
    for out in result.topics.values():
        for r in out.rejected.itertuples(index=False):
            params.append(
                (
                    batch_id,
                    r.src_topic,
                    int(r.src_partition),
                    int(r.src_offset),
                    r.reason,
                    Jsonb(json.loads(r.record)),
                )
            )
    if params:
        cur.executemany(
            "INSERT INTO meta.rejected_rows (batch_id, topic, kafka_partition, kafka_offset,"
            " reason, record) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            params,
        )


def _close_abandoned(cur: psycopg.Cursor[Any]) -> int:
    """Close batches left ``running`` by a loader that died: loads hold the load lock, so
    while we hold it no other batch can be live."""
    cur.execute(
        "UPDATE meta.load_batches SET status = 'abandoned', finished_at = now(),"
        " error = 'the loader stopped before finishing (closed by the next load)'"
        " WHERE status = 'running'"
    )
    return max(cur.rowcount, 0)


def _open_batch(settings: Settings, force: bool, files: int) -> int:
    with connect(settings, "loader", autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO meta.load_batches (forced, files) VALUES (%s, %s) RETURNING batch_id",
            [force, files],
        ).fetchone()
    assert row is not None
    return int(row[0])


def _fail_batch(
    settings: Settings, batch_id: int, error: str, results: Sequence[checks.CheckResult] = ()
) -> None:
    with connect(settings, "loader") as conn:
        conn.execute(
            "UPDATE meta.load_batches SET status = 'failed', finished_at = now(), error = %s"
            " WHERE batch_id = %s",
            [error[:4000], batch_id],
        )
        if results:
            checks.record_checks(conn, results, batch_id)
        conn.commit()


def transform(
    settings: Settings | None = None,
    *,
    force: bool = False,
    client: Any = None,
    local_dask: bool = False,
    topics: Sequence[str] = TOPICS,
) -> CleanBatch | None:
    """Run the Dask graph over the committed landing files that no load or pending clean
    batch covers yet, and publish the result as a clean batch; None when nothing is new.

    ``force`` takes every landing file again (a reload; the warehouse ends up identical).
    ``client`` reuses a ``distributed.Client``; otherwise the configured scheduler is used,
    or an in-process cluster if ``local_dask`` (tests only).
    """
    settings = settings or get_settings()
    with (
        connect(settings, "loader", autocommit=True) as conn,
        advisory_lock(conn, TRANSFORM_LOCK_ID, what="transform", timeout=settings.lock_wait),
        conn.cursor() as cur,
    ):
        # Pending batches first, then the loaded files: a batch leaves the clean zone only
        # after its files are recorded, so no file slips between the two listings.
        taken = {rel for b in pending_batches(settings) for rel in b.rels}
        done = taken if force else taken | _loaded_paths(cur)
        new = discover(settings, topics, exclude=done)
        if not any(new.values()):
            return None
        options = storage_options(settings)
        tz_map = _tz_map(cur, new.get("airports", []), options)
        if client is not None:
            result = graph.run(
                client, new, tz_map, timeout=settings.dask_compute_timeout, storage_options=options
            )
        else:
            with dask_client(settings, local_fallback=local_dask) as c:
                result = graph.run(
                    c, new, tz_map, timeout=settings.dask_compute_timeout, storage_options=options
                )
        return write_batch(settings, result, forced=force)


def load_pending(settings: Settings | None = None) -> list[LoadResult]:
    """Load every pending clean batch, oldest first, each in one transaction; the Airflow
    load task calls this. Raises :class:`~flightpipe.warehouse.checks.DataCheckError` when
    a data check fails (the batch stays pending)."""
    settings = settings or get_settings()
    results = []
    with (
        connect(settings, "loader", autocommit=True) as lock_conn,
        # Session-level: held across the batch transactions below, released on disconnect.
        advisory_lock(lock_conn, LOAD_LOCK_ID, what="load", timeout=settings.lock_wait),
    ):
        with lock_conn.cursor() as cur:
            if abandoned := _close_abandoned(cur):
                log.warning("closed %d load batch(es) whose loader died", abandoned)
        for batch in pending_batches(settings):
            with lock_conn.cursor() as cur:
                spent = not batch.forced and batch.rels <= _loaded_paths(cur)
            if not spent:
                results.append(_load_batch(settings, batch))
            remove_batch(batch)
    return results


def _load_batch(settings: Settings, batch: CleanBatch) -> LoadResult:
    t_start = time.perf_counter()
    timings: dict[str, float] = {"transform": batch.transform_seconds}
    result = read_batch(batch)
    batch_id = _open_batch(settings, batch.forced, len(batch.files))
    try:
        with connect(settings, "loader") as conn, conn.cursor() as cur:
            cur.execute("SELECT faa_code FROM dw.dim_airport")
            known_airports = {row[0] for row in cur.fetchall()}
            t0 = time.perf_counter()
            _stage(cur, result, known_airports)
            timings["copy"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            changes, _bulk, quarantined = _run_steps(cur, batch_id)
            timings["upsert"] = time.perf_counter() - t0
            counts = {t: out.counts for t, out in result.topics.items()}
            for topic, n in quarantined.items():
                if topic in counts:
                    counts[topic]["loaded"] -= n
                    counts[topic]["rejected"] += n
            _record_files(cur, batch.files, result.file_rows, batch_id)
            _record_rejects(cur, result, batch_id)
            _record_counts(cur, batch_id, counts, changes, batch.files)
            t0 = time.perf_counter()
            results = checks.run_checks(conn, batch_id)
            timings["checks"] = time.perf_counter() - t0
            bad = checks.failures(results)
            if bad:
                conn.rollback()
                error = checks.DataCheckError(bad, batch_id)
                _fail_batch(settings, batch_id, str(error), results)
                raise error
            checks.record_checks(conn, results, batch_id)
            timings["total"] = time.perf_counter() - t_start + batch.transform_seconds
            cur.execute(
                "UPDATE meta.load_batches SET status = 'succeeded', finished_at = now(),"
                " timings = %s WHERE batch_id = %s",
                [Jsonb({k: round(v, 3) for k, v in timings.items()}), batch_id],
            )
            freshness.record(cur, batch_id, batch.files, batch.storage_options)
            conn.commit()
    except checks.DataCheckError:
        raise
    except BaseException as exc:
        _fail_batch(settings, batch_id, f"{type(exc).__name__}: {exc}")
        raise
    return LoadResult(
        batch_id=batch_id,
        status="succeeded",
        files=len(batch.files),
        counts=counts,
        changes=changes,
        timings=timings,
        checks=results,
    )


def _record_counts(
    cur: psycopg.Cursor[Any],
    batch_id: int,
    counts: Mapping[str, Mapping[str, int]],
    changes: Mapping[str, Mapping[str, int]],
    files: Sequence[LandedFile],
) -> None:
    totals = {
        k: sum(c[k] for c in counts.values()) for k in ("landed", "duplicate", "loaded", "rejected")
    }
    cur.execute(
        "UPDATE meta.load_batches SET rows_in = %s, rows_duplicate = %s,"
        " rows_loaded = %s, rows_rejected = %s, rows_inserted = %s,"
        " rows_updated = %s, counts = %s, offsets = %s WHERE batch_id = %s",
        [
            totals["landed"],
            totals["duplicate"],
            totals["loaded"],
            totals["rejected"],
            sum(c["inserted"] for c in changes.values()),
            sum(c["updated"] for c in changes.values()),
            Jsonb({"topics": counts, "tables": changes}),
            Jsonb(_offsets(files)),
            batch_id,
        ],
    )


def load(
    settings: Settings | None = None,
    *,
    force: bool = False,
    client: Any = None,
    local_dask: bool = False,
    topics: Sequence[str] = TOPICS,
) -> LoadResult:
    """:func:`transform` then :func:`load_pending`, the two tasks of the transform and load
    DAGs in one call (command line, tests, benchmarks); the result of the last batch loaded."""
    settings = settings or get_settings()
    transform(settings, force=force, client=client, local_dask=local_dask, topics=topics)
    results = load_pending(settings)
    if not results:
        return LoadResult(batch_id=None, status="nothing to load")
    return results[-1]  # batches load oldest first: the new one is the last
