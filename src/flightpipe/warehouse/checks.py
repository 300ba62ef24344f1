"""Data checks of the warehouse, run inside every load transaction and on demand.

Each check is one query returning ``(observed, details)``; it passes when ``observed`` equals
the expected value (0 offending rows for all but the reconciliations). Foreign keys and
unique constraints already guard the tables; the checks still look, because constraints can
be dropped, disabled or created ``NOT VALID`` by hand, and a load must not report success
on a warehouse that is broken. Input never fails a check: the value rules are the contract's
(``flightpipe.contract``), and rows that break them are quarantined before the upsert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from flightpipe.settings import Settings, get_settings
from flightpipe.warehouse.db import connect
from flightpipe.warehouse.rules import rule_counts


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    observed: float
    expected: float
    details: dict[str, Any] = field(default_factory=dict)


class DataCheckError(RuntimeError):
    """One or more data checks failed; the load that ran them was rolled back."""

    def __init__(self, failures: Sequence[CheckResult], batch_id: int | None = None) -> None:
        self.failures = list(failures)
        self.batch_id = batch_id
        lines = [
            f"{f.name}: observed {f.observed:g}, expected {f.expected:g}"
            + (f" {json.dumps(f.details, default=str)}" if f.details else "")
            for f in failures
        ]
        where = f"load batch {batch_id}" if batch_id is not None else "the warehouse"
        super().__init__(f"{len(lines)} data check(s) failed on {where}:\n  " + "\n  ".join(lines))


# (fact table, column, dimension table, dimension key)
FOREIGN_KEYS: Final = [
    ("fact_flight", "date_key", "dim_date", "date_key"),
    ("fact_flight", "airline_key", "dim_airline", "airline_key"),
    ("fact_flight", "origin_airport_key", "dim_airport", "airport_key"),
    ("fact_flight", "dest_airport_key", "dim_airport", "airport_key"),
    ("fact_flight", "plane_key", "dim_plane", "plane_key"),
    ("fact_weather_hourly", "airport_key", "dim_airport", "airport_key"),
    ("fact_weather_hourly", "date_key", "dim_date", "date_key"),
]

NATURAL_KEYS: Final = [
    ("fact_flight", ("date_key", "airline_key", "flight_number", "origin_airport_key")),
    ("fact_weather_hourly", ("airport_key", "observed_at")),
    ("dim_airline", ("carrier_code",)),
    ("dim_airport", ("faa_code",)),
    ("dim_plane", ("tailnum",)),
    ("dim_date", ("full_date",)),
]

# Staged rows not in dw by their natural key: zero after a load. The key is matched too
# (it is a function of the natural key), which lets the planner use the primary key.
STAGED_NOT_IN_DW = {
    "flights": """
        SELECT count(*) FROM staging.flights_resolved AS s WHERE NOT EXISTS (
            SELECT 1 FROM dw.fact_flight AS f
            WHERE f.flight_key = s.flight_key
              AND f.date_key = s.date_key AND f.airline_key = s.airline_key
              AND f.flight_number = s.flight_number
              AND f.origin_airport_key = s.origin_airport_key)""",
    "weather": """
        SELECT count(*) FROM staging.weather_resolved AS s WHERE NOT EXISTS (
            SELECT 1 FROM dw.fact_weather_hourly AS w
            WHERE w.airport_key = s.airport_key AND w.observed_at = s.observed_at)""",
}

# Scope of the batch-scoped checks: the rows the batch inserted or changed.
_BATCH_ROWS: Final = sql.SQL("f.load_batch_id = %(batch_id)s")
_ALL_ROWS: Final = sql.SQL("true")


def _scalar(cur: psycopg.Cursor[Any], query: sql.Composed | str, params: Any = None) -> Any:
    cur.execute(query, params)
    row = cur.fetchone()
    return None if row is None else row[0]


# Enforced foreign keys of dw: validated, with every referential trigger enabled.
_ENFORCED_FKS: Final = """
SELECT c.conname, src.relname, a.attname, dst.relname, b.attname
FROM pg_constraint AS c
JOIN pg_class AS src ON src.oid = c.conrelid
JOIN pg_class AS dst ON dst.oid = c.confrelid
JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute AS b ON b.attrelid = c.confrelid AND b.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.convalidated AND cardinality(c.conkey) = 1
  AND src.relnamespace = 'dw'::regnamespace AND dst.relnamespace = 'dw'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_trigger AS t
                  WHERE t.tgconstraint = c.oid AND t.tgenabled = 'D')
"""
# Unique indexes of dw that hold: valid, whole-table, on plain columns.
_UNIQUE_INDEXES: Final = """
SELECT i.indexrelid::regclass::text, t.relname,
       array(SELECT a.attname FROM pg_attribute AS a
             WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
FROM pg_index AS i
JOIN pg_class AS t ON t.oid = i.indrelid
WHERE i.indisunique AND i.indisvalid AND i.indisready AND i.indpred IS NULL
  AND i.indexprs IS NULL AND t.relnamespace = 'dw'::regnamespace
"""


def _enforced_fks(cur: psycopg.Cursor[Any]) -> dict[tuple[str, str, str, str], str]:
    """(table, column, dimension, key) -> name of the constraint that enforces it."""
    cur.execute(_ENFORCED_FKS)
    return {(t, c, d, k): name for name, t, c, d, k in cur.fetchall()}


def _unique_keys(cur: psycopg.Cursor[Any]) -> dict[tuple[str, frozenset[str]], str]:
    """(table, columns) -> name of a unique index that holds them."""
    cur.execute(_UNIQUE_INDEXES)
    return {(t, frozenset(cols)): name for name, t, cols in cur.fetchall()}


def _orphans(
    cur: psycopg.Cursor[Any], batch_id: int | None = None, *, scan: bool = False
) -> list[CheckResult]:
    """Fact rows whose dimension member is missing; one scan per fact table (each
    dimension's keys hashed once).

    A foreign key PostgreSQL enforces (validated, its triggers enabled) needs no scan: it
    cannot be broken. The scan is for the ones that are not: dropped, disabled or added
    ``NOT VALID`` by hand, or ``scan`` (an audit that trusts no constraint).

    With ``batch_id``, only the rows that batch inserted or changed: still complete, because
    a row no load touched since its own checks passed can only become an orphan if its
    member disappears or changes key; loads never delete members, and keys are a function
    of the natural key, which no load changes. Hand-made changes between loads are what the
    on-demand check of the whole warehouse is for.
    """
    results = []
    scope = _ALL_ROWS if batch_id is None else _BATCH_ROWS
    enforced = {} if scan else _enforced_fks(cur)
    for table in dict.fromkeys(t for t, *_ in FOREIGN_KEYS):
        fks = []
        for t, c, d, k in FOREIGN_KEYS:
            constraint = enforced.get((t, c, d, k))
            if t != table:
                continue
            if constraint is None:
                fks.append((c, d, k))
            else:
                held = {"enforced_by": constraint}
                results.append(CheckResult(f"orphan_fk.{table}.{c}", True, 0, 0, held))
        if not fks:
            continue
        counts = sql.SQL(", ").join(
            sql.SQL(
                "count(*) FILTER (WHERE f.{c} IS NOT NULL"
                " AND f.{c} NOT IN (SELECT d.{k} FROM dw.{d} AS d WHERE d.{k} IS NOT NULL))"
            ).format(c=sql.Identifier(c), d=sql.Identifier(d), k=sql.Identifier(k))
            for c, d, k in fks
        )
        query = sql.SQL("SELECT {counts} FROM dw.{t} AS f WHERE {scope}").format(
            counts=counts, t=sql.Identifier(table), scope=scope
        )
        cur.execute(query, {"batch_id": batch_id})
        row = cur.fetchone() or (0,) * len(fks)
        for (column, _, _), n in zip(fks, row, strict=True):
            results.append(CheckResult(f"orphan_fk.{table}.{column}", n == 0, int(n), 0))
    return results


# Above this share of a table written by the batch, a check reads the whole table.
SCOPED_MAX_SHARE: Final = 0.5


def _written(cur: psycopg.Cursor[Any], batch_id: int, table: str) -> int:
    """Rows of ``table`` the batch inserted or changed, as its audit row counts them."""
    changes = _scalar(
        cur,
        "SELECT counts -> 'tables' -> %s FROM meta.load_batches WHERE batch_id = %s",
        [table, batch_id],
    )
    return int((changes or {}).get("inserted", 0)) + int((changes or {}).get("updated", 0))


def estimate(cur: psycopg.Cursor[Any], table: str) -> int:
    """Rows of a dw table by the statistics (after the load's ANALYZE in bulk mode)."""
    n = _scalar(
        cur,
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class"
        " WHERE oid = ('dw.' || quote_ident(%s))::regclass",
        [table],
    )
    return int(n or 0)


def _duplicates(
    cur: psycopg.Cursor[Any], batch_id: int | None = None, *, scan: bool = False
) -> list[CheckResult]:
    """Natural keys held by more than one row; none to look for where a valid unique index
    holds the key (unless ``scan``).

    With ``batch_id``, the facts only look at the natural keys of the rows that batch
    inserted or changed (against the whole table): a duplicate pair the batch did not touch
    was already there when the load that wrote it passed this check. When the batch wrote
    most of the table (a first load), one pass over the whole table is cheaper and just as
    complete. Dimensions are small and always checked whole (dim_date has no load batch).
    """
    results = []
    unique = {} if scan else _unique_keys(cur)
    for table, keys in NATURAL_KEYS:
        index = unique.get((table, frozenset(keys)))
        if index is not None:
            results.append(
                CheckResult(f"duplicate_natural_key.{table}", True, 0, 0, {"enforced_by": index})
            )
            continue
        cols = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
        scoped = (
            batch_id is not None
            and table.startswith("fact_")
            and _written(cur, batch_id, table) < SCOPED_MAX_SHARE * estimate(cur, table)
        )
        scope = (
            sql.SQL("WHERE ({cols}) IN (SELECT {cols} FROM dw.{t} AS f WHERE {batch})").format(
                cols=cols, t=sql.Identifier(table), batch=_BATCH_ROWS
            )
            if scoped
            else sql.SQL("")
        )
        query = sql.SQL(
            "SELECT count(*), (array_agg(row_to_json(x)))[1:5] FROM"
            " (SELECT {cols}, count(*) AS copies FROM dw.{t} {scope}"
            "  GROUP BY {cols} HAVING count(*) > 1) AS x"
        ).format(cols=cols, t=sql.Identifier(table), scope=scope)
        cur.execute(query, {"batch_id": batch_id})
        row = cur.fetchone()
        n, sample = (int(row[0]), row[1]) if row else (0, None)
        details = {"sample": sample} if n else {}
        results.append(CheckResult(f"duplicate_natural_key.{table}", n == 0, n, 0, details))
    return results


def _rules(cur: psycopg.Cursor[Any], batch_id: int | None) -> list[CheckResult]:
    """The contract's row rules over what was loaded (offenders were quarantined before)."""
    return [
        CheckResult(name, n == 0, n, 0, {"sources": sample} if n else {})
        for name, n, sample in rule_counts(cur, batch_id)
    ]


def _reconcile(cur: psycopg.Cursor[Any], batch_id: int) -> list[CheckResult]:
    """Counts of the batch add up, and every staged row is in dw (by natural key)."""
    results = []
    counts = _scalar(cur, "SELECT counts FROM meta.load_batches WHERE batch_id = %s", [batch_id])
    for topic, c in sorted((counts or {}).get("topics", {}).items()):
        landed = int(c["landed"])
        accounted = int(c["duplicate"]) + int(c["loaded"]) + int(c["rejected"])
        results.append(
            CheckResult(
                f"reconcile.{topic}.landed_eq_duplicate_loaded_rejected",
                landed == accounted,
                accounted,
                landed,
                dict(c),
            )
        )
    staged = {
        "flights": "SELECT count(*) FROM staging.flights",
        "weather": "SELECT count(*) FROM staging.weather",
        "airlines": "SELECT count(*) FROM staging.airlines",
        "airports": "SELECT count(*) FROM staging.airports WHERE member_source = 'reference'",
        "planes": "SELECT count(*) FROM staging.planes",
    }
    for topic, query in staged.items():
        expected = int((counts or {}).get("topics", {}).get(topic, {}).get("loaded", 0))
        n = int(_scalar(cur, query))
        results.append(
            CheckResult(f"reconcile.{topic}.staged_eq_loaded", n == expected, n, expected)
        )
    for topic, query in STAGED_NOT_IN_DW.items():
        n = int(_scalar(cur, query))
        results.append(CheckResult(f"reconcile.{topic}.staged_rows_in_dw", n == 0, n, 0))
    return results


def run_checks(
    conn: psycopg.Connection[Any],
    batch_id: int | None = None,
    *,
    reconcile: bool = True,
    scan: bool = False,
) -> list[CheckResult]:
    """Every check on ``conn`` (inside the caller's transaction); never raises on failure.

    With ``batch_id`` and ``reconcile`` (inside the load transaction), the checks look at
    the rows that batch inserted or changed (see :func:`_orphans`, :func:`_duplicates` for
    why that is complete) and the batch's counts are reconciled against the staging tables.
    With ``batch_id`` alone, row-level rules look at that batch's rows and the rest at the
    whole warehouse; without, the whole warehouse is checked. Foreign keys and natural keys
    that PostgreSQL enforces are not scanned for, unless ``scan``.
    """
    scoped = batch_id if reconcile else None
    with conn.cursor() as cur:
        results = (
            _orphans(cur, scoped, scan=scan)
            + _duplicates(cur, scoped, scan=scan)
            + _rules(cur, batch_id)
        )
        if batch_id is not None and reconcile:
            results += _reconcile(cur, batch_id)
    return results


def record_checks(
    conn: psycopg.Connection[Any], results: Sequence[CheckResult], batch_id: int | None
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO meta.check_results (batch_id, check_name, passed, observed, expected,"
            " details) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (batch_id, r.name, r.passed, r.observed, r.expected, Jsonb(r.details))
                for r in results
            ],
        )


def failures(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


def check_warehouse(
    settings: Settings | None = None,
    batch_id: int | None = None,
    *,
    record: bool = True,
    raise_on_failure: bool = True,
    scan: bool = False,
) -> list[CheckResult]:
    """Check the warehouse (row rules limited to ``batch_id``'s rows if given); store the
    results in meta.check_results; raise :class:`DataCheckError` if anything is broken.
    ``scan``: look for orphans and duplicate keys even where constraints rule them out.

    Every load already ran the full set, batch reconciliation included, inside its own
    transaction; this is the on-demand (CLI, DAG) check of the committed state.
    """
    settings = settings or get_settings()
    with connect(settings, "loader") as conn:
        results = run_checks(conn, batch_id, reconcile=False, scan=scan)
        if record:
            record_checks(conn, results, batch_id)
        conn.commit()
    bad = failures(results)
    if bad and raise_on_failure:
        raise DataCheckError(bad, batch_id)
    return results
