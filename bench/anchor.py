"""Single-process anchor for the Dask transform: the same cleaning in one DuckDB process.

The Dask graph (``flightpipe.transform.graph`` over ``transform.clean``) is compared with
what one process does on the same landed Parquet files: DuckDB reads them with
``read_parquet`` and runs clean, UTC times, flags, rejects, dedupe and the weather join as
SQL, the result materialised as Arrow. It answers "what does the distributed graph cost
over a good single-process engine on two cores?", and :func:`compare_with_dask` checks the
two agree, so the comparison is of equal work.

This is a benchmark anchor, not a second pipeline: nothing loads its output. Shapes, types,
keys and bounds come from ``flightpipe.contract`` (staging columns and their types, NOT
NULL columns, ``null_outside`` ranges, natural keys, the hhmm clock bound of the events);
what the cleaner does beyond the contract (which raw field feeds which column, the order of
reject reasons, local time to UTC) is re-expressed here, kept per topic in the ``_*_sql``
builders and, for the time zones, in :func:`local_hhmm_to_utc_sql`.

``python -m bench.anchor`` lands the whole year in an isolated pipeline, compares, then
times Dask and DuckDB three times each, interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, get_args

import duckdb
import pyarrow as pa

from bench.common import OUT_DIR, children_log, isolated, say
from flightpipe import pipeline
from flightpipe.contract import SOURCE, TOPICS, entity
from flightpipe.contract.events import ClockHHMM
from flightpipe.settings import Settings
from flightpipe.transform import clean, graph
from flightpipe.transform.client import dask_client
from flightpipe.warehouse import load
from flightpipe.warehouse.db import connect
from flightpipe.zones.landing import LandedFile, discover

# DuckDB type of each PostgreSQL staging type of the contract.
DUCK_TYPES = {
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "text": "VARCHAR",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamptz": "TIMESTAMPTZ",
    "date": "DATE",
}
# Highest hhmm value an event may carry (2400: midnight at the end of the day).
HHMM_MAX = get_args(ClockHHMM)[1].le
# NOT NULL staging columns whose absence the cleaner reports under a rule of its own (or
# that cannot be NULL): every other NOT NULL column gets a "missing <column>" reject.
OWN_RULE = {
    "flights": {"sched_dep_at", "weather_hour", "is_cancelled", "is_diverted"},
    "weather": {"observed_at", "local_date", "local_hour"},
    "airports": {"member_source"},
}
# The reference's DST rule letters the cleaner keeps (anything else becomes NULL).
DST_RULES = ("A", "U", "N", "E", "O", "S", "Z")


# --- SQL pieces derived from the contract -------------------------------------------------------


def _type(topic: str, column: str) -> str:
    return DUCK_TYPES[entity(topic).pg_type(column)]


def _int(topic: str, column: str, expr: str) -> str:
    """Nullable integer of the column's contract type; non-integral or out of range: NULL."""
    return f"TRY_CAST(CASE WHEN ({expr}) = round({expr}) THEN {expr} END AS {_type(topic, column)})"


def _text(expr: str, upper: bool = False) -> str:
    out = f"NULLIF(trim({expr}), '')"
    return f"upper({out})" if upper else out


def _valid_hhmm(expr: str, allow_2400: bool) -> str:
    top = HHMM_MAX if allow_2400 else HHMM_MAX - 41  # 2359
    return f"({expr} BETWEEN 0 AND {top} AND {expr} % 100 < 60)"


def _reject_case(topic: str, rules: Sequence[tuple[str, str]]) -> str:
    """First failing rule wins: the contract's NOT NULL columns, then the cleaner's rules."""
    skip = OWN_RULE.get(topic, set()) | set(SOURCE)
    missing = [
        (f"missing {c.name}", f"{c.name} IS NULL")
        for c in entity(topic).staging
        if not c.nullable and c.name not in skip
    ]
    whens = " ".join(f"WHEN {pred} THEN '{reason}'" for reason, pred in [*missing, *rules])
    return f"CASE {whens} END"


def _null_outside(topic: str, column: str) -> str:
    bounds = entity(topic).null_outside.get(column)
    if bounds is None:
        return column
    lo, hi = bounds
    return f"CASE WHEN {column} BETWEEN {lo} AND {hi} THEN {column} END"


def _lineage() -> str:
    return (
        "_topic AS src_topic, TRY_CAST(_partition AS INTEGER) AS src_partition,"
        " TRY_CAST(_offset AS BIGINT) AS src_offset, raw AS _raw"
    )


def local_hhmm_to_utc_sql(date: str, hhmm: str, zone: str, not_before: str, max_days: int) -> str:
    """DuckDB re-expression of ``clean.local_hhmm_to_utc``, for the benchmark anchor only
    (not a second pipeline): the UTC instant of local clock ``hhmm`` on ``date`` or up to
    ``max_days`` later, the first not before ``not_before``; NULL when any input is.

    ICU's ``timezone(zone, naive)`` resolves an ambiguous hour to standard time as pandas
    does with ``ambiguous=False``; a non-existent local time (the skipped hour) ICU moves by
    the gap, pandas' ``shift_forward`` to the end of the gap, so ``fp_local_at`` goes to the
    start of the hour plus the gap (every transition of the data's zones is on the hour).
    """
    branches = " ".join(
        f"WHEN fp_local_at({date}, {hhmm}, {zone}, {k}) >= {not_before}"
        f" THEN fp_local_at({date}, {hhmm}, {zone}, {k})"
        for k in range(max_days + 1)
    )
    return f"CASE {branches} END"


MACROS = """
CREATE OR REPLACE MACRO fp_naive(d, hhmm, k) AS
    d + to_days(k) + to_minutes(((hhmm // 100) * 60 + hhmm % 100)::BIGINT);
CREATE OR REPLACE MACRO fp_shifted(zone, naive, instant) AS
    CASE WHEN timezone(zone, instant) = naive THEN instant
         ELSE timezone(zone, date_trunc('hour', naive) + (timezone(zone, instant) - naive)) END;
CREATE OR REPLACE MACRO fp_local_at(d, hhmm, zone, k) AS
    fp_shifted(zone, fp_naive(d, hhmm, k), timezone(zone, fp_naive(d, hhmm, k)));
"""


# --- per topic: raw fields -> cleaned columns + reject reason ---------------------------------


def _flights_sql(src: str) -> str:
    t = "flights"
    ints = {
        "year": "year", "month": "month", "day": "day", "flight_number": "flight",
        "sched_dep_time": "sched_dep_time", "dep_time": "dep_time",
        "sched_arr_time": "sched_arr_time", "arr_time": "arr_time",
        "dep_delay_min": "dep_delay", "arr_delay_min": "arr_delay",
        "air_time_min": "air_time", "distance_mi": "distance",
    }  # fmt: skip
    typed = ", ".join(f"{_int(t, col, raw)} AS {col}" for col, raw in ints.items())
    rules = [
        ("missing or unparsable time_hour", "time_hour IS NULL"),
        ("invalid date", "local_date IS NULL"),
        ("invalid sched_dep_time", f"NOT coalesce({_valid_hhmm('sched_dep_time', False)}, false)"),
        ("invalid sched_arr_time", f"NOT coalesce({_valid_hhmm('sched_arr_time', False)}, false)"),
        ("invalid dep_time", f"dep_time IS NOT NULL AND NOT {_valid_hhmm('dep_time', True)}"),
        ("invalid arr_time", f"arr_time IS NOT NULL AND NOT {_valid_hhmm('arr_time', True)}"),
        ("invalid dep_delay", "raw_dep_delay IS NOT NULL AND dep_delay_min IS NULL"),
        ("invalid arr_delay", "raw_arr_delay IS NOT NULL AND arr_delay_min IS NULL"),
    ]
    dep_guess = local_hhmm_to_utc_sql(
        "local_date", "dep_time", "origin_zone", "sched_dep_at - INTERVAL 2 HOUR", 1
    )
    sched_arr = local_hhmm_to_utc_sql(
        "local_date", "sched_arr_time", "dest_zone", "sched_dep_at", 1
    )
    arr_guess = local_hhmm_to_utc_sql("local_date", "arr_time", "dest_zone", "dep_at", 2)
    return f"""
    WITH c AS (
        SELECT {typed}, carrier, origin, dest, tailnum, time_hour,
               dep_delay AS raw_dep_delay, arr_delay AS raw_arr_delay,
               {_int(t, "sched_dep_time", "minute")} AS raw_minute, {_lineage()}
        FROM {src} AS raw),
    d AS (
        SELECT c.*, try(make_date(year, month, day)) AS local_date, time_hour AS weather_hour,
               time_hour + to_minutes(coalesce(raw_minute, sched_dep_time % 100)) AS sched_dep_at,
               dep_time IS NULL AS is_cancelled,
               dep_time IS NOT NULL AND (arr_delay_min IS NULL OR arr_time IS NULL) AS is_diverted,
               zo.zone AS origin_zone, zd.zone AS dest_zone
        FROM c LEFT JOIN fp_zones zo ON zo.code = c.origin LEFT JOIN fp_zones zd
            ON zd.code = c.dest),
    e AS (
        SELECT d.*, coalesce(sched_dep_at + to_minutes(dep_delay_min),
                             CASE WHEN dep_time IS NOT NULL THEN {dep_guess} END) AS dep_at,
               {sched_arr} AS sched_arr_at
        FROM d)
    SELECT e.*, coalesce(sched_arr_at + to_minutes(arr_delay_min),
                         CASE WHEN arr_time IS NOT NULL THEN {arr_guess} END) AS arr_at,
           {_reject_case(t, rules)} AS _reject
    FROM e"""


def _weather_sql(src: str) -> str:
    t = "weather"
    measures = {
        "temp_f": "temp", "dewp_f": "dewp", "humid_pct": "humid", "wind_speed_mph": "wind_speed",
        "wind_gust_mph": "wind_gust", "precip_in": "precip", "pressure_mb": "pressure",
        "visib_mi": "visib",
    }  # fmt: skip
    typed = ", ".join(f"TRY_CAST({raw} AS DOUBLE) AS {col}" for col, raw in measures.items())
    rules = [
        ("missing or unparsable time_hour", "observed_at IS NULL"),
        ("time_hour not on the hour", "observed_at <> date_trunc('hour', observed_at)"),
        ("invalid date", "local_date IS NULL"),
        ("invalid hour", "NOT coalesce(local_hour BETWEEN 0 AND 23, false)"),
    ]
    parts = ", ".join(f"{_int(t, 'local_hour', c)} AS p_{c}" for c in ("year", "month", "day"))
    return f"""
    WITH c AS (
        SELECT origin, time_hour AS observed_at, {parts}, {_int(t, "local_hour", "hour")}
               AS local_hour, {typed},
               {_int(t, "wind_dir_deg", "round_even(TRY_CAST(wind_dir AS DOUBLE), 0)")}
               AS wind_dir_deg, {_lineage()}
        FROM {src} AS raw),
    d AS (SELECT c.*, try(make_date(p_year, p_month, p_day)) AS local_date FROM c)
    SELECT d.*, {_reject_case(t, rules)} AS _reject FROM d"""


def _airlines_sql(src: str) -> str:
    return f"""
    WITH c AS (SELECT carrier, {_text("name")} AS name, {_lineage()} FROM {src} AS raw)
    SELECT c.*, {_reject_case("airlines", [])} AS _reject FROM c"""


def _airports_sql(src: str) -> str:
    t = "airports"
    letters = ", ".join(f"'{x}'" for x in DST_RULES)
    return f"""
    WITH c AS (
        SELECT faa, {_text("name")} AS name, TRY_CAST(lat AS DOUBLE) AS latitude,
               TRY_CAST(lon AS DOUBLE) AS longitude, {_int(t, "altitude_ft", "alt")}
               AS altitude_ft, {_int(t, "utc_offset_h", "tz")} AS utc_offset_h,
               CASE WHEN {_text("dst", upper=True)} IN ({letters})
                    THEN {_text("dst", upper=True)} END AS dst_rule,
               {_text("raw.tzone")} AS ref_tzone, ad.zone AS ad_tzone, {_lineage()}
        FROM {src} AS raw LEFT JOIN fp_airportsdata ad ON ad.code = raw.faa),
    d AS (
        SELECT c.*, coalesce(ref_tzone, ad_tzone) AS tzone,
               CASE WHEN ref_tzone IS NOT NULL THEN 'reference'
                    WHEN ad_tzone IS NOT NULL THEN 'airportsdata' END AS tzone_source,
               'reference' AS member_source
        FROM c)
    SELECT d.*, {_reject_case(t, [])} AS _reject FROM d"""


def _planes_sql(src: str) -> str:
    t = "planes"
    ints = {"year_built": "year", "engines": "engines", "seats": "seats", "speed_mph": "speed"}
    typed = ", ".join(f"{_int(t, col, raw)} AS {col}" for col, raw in ints.items())
    texts = {
        "aircraft_type": "type", "manufacturer": "manufacturer", "model": "model",
        "engine_type": "engine",
    }  # fmt: skip
    text_cols = ", ".join(f"{_text(raw)} AS {col}" for col, raw in texts.items())
    return f"""
    WITH c AS (SELECT tailnum, {typed}, {text_cols}, {_lineage()} FROM {src} AS raw)
    SELECT c.*, {_reject_case(t, [])} AS _reject FROM c"""


CLEAN_SQL = {
    "flights": _flights_sql,
    "weather": _weather_sql,
    "airlines": _airlines_sql,
    "airports": _airports_sql,
    "planes": _planes_sql,
}


# --- running the anchor --------------------------------------------------------------------------


@dataclass
class AnchorOutput:
    """Staged and rejected rows per topic as Arrow tables, and the timed seconds."""

    staged: dict[str, pa.Table] = field(default_factory=dict)
    rejected: dict[str, pa.Table] = field(default_factory=dict)
    seconds: float = 0.0


def transform_inputs(settings: Settings) -> tuple[dict[str, list[LandedFile]], dict[str, str]]:
    """The committed landed files and the airport zones, as ``load.transform`` takes them
    (warehouse zones, this batch's airports reference on top). Not timed, on either side."""
    files = discover(settings, TOPICS)
    with connect(settings, "loader", autocommit=True) as conn, conn.cursor() as cur:
        tz_map = load._tz_map(cur, files.get("airports", []))
    return files, tz_map


def _zone_tables(tz_map: Mapping[str, str]) -> tuple[pa.Table, pa.Table]:
    """(code -> zone as the flights use it: tz_map first, then airportsdata; airportsdata
    alone, for the airports' fallback), the lookups of ``clean.zones_for``."""
    ad = {code: e.get("tz") or None for code, e in clean._airportsdata().items()}
    ad = {c: z for c, z in ad.items() if z}
    zones = {**ad, **{c: z for c, z in tz_map.items() if z}}

    def table(m: Mapping[str, str]) -> pa.Table:
        return pa.table({"code": list(m), "zone": list(m.values())})

    return table(zones), table(ad)


@contextmanager
def _duck(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory DuckDB with as many threads as the Dask cluster's configured workers
    have (same cores for both) and UTC as the session zone."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET threads = {max(1, settings.dask_workers * settings.dask_threads)}")
        con.execute(f"SET memory_limit = '{settings.dask_memory_limit}'")
        con.execute("SET TimeZone = 'UTC'")
        con.execute(MACROS)
        yield con
    finally:
        con.close()


def _source(con: duckdb.DuckDBPyConnection, topic: str, files: Sequence[LandedFile]) -> str:
    """A subquery with exactly the topic's raw columns; one an older event version lacks is
    NULL. Paths are quoted literals: table functions take no parameters in every version."""
    paths = ", ".join("'" + str(f.path).replace("'", "''") + "'" for f in files)
    scan = f"read_parquet([{paths}], union_by_name = true)"
    present = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    cols = ", ".join(c if c in present else f"NULL AS {c}" for c in entity(topic).raw_columns)
    return f"(SELECT {cols} FROM {scan})"


def _clean_topic(con: duckdb.DuckDBPyConnection, topic: str, src: str) -> None:
    """Cleaned rows with their reject reason, the latest delivery per key and Kafka
    partition kept (exact redeliveries of incomplete keys collapse on their offset)."""
    keys = list(entity(topic).natural_key)
    complete = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fp_clean_{topic} AS
        SELECT * FROM ({CLEAN_SQL[topic](src)})
        QUALIFY row_number() OVER (
            PARTITION BY src_partition, ({complete}), {", ".join(keys)},
                         CASE WHEN NOT ({complete}) THEN src_offset END
            ORDER BY src_offset DESC) = 1"""
    )


def _staged_sql(topic: str) -> str:
    """Good rows, globally the latest per key, in the contract's staging shape and types;
    flights get the origin's weather of the scheduled departure hour."""
    e = entity(topic)
    keys = ", ".join(e.natural_key)
    latest = f"""(SELECT * FROM fp_clean_{topic} WHERE _reject IS NULL
        QUALIFY row_number() OVER (PARTITION BY {keys}
                                   ORDER BY src_partition DESC, src_offset DESC) = 1) AS s"""
    weather = {target: source for source, target in clean.WEATHER_JOIN.items()}
    cols = []
    for col in e.staging_columns:
        expr = f"w.{weather[col]}" if topic == "flights" and col in weather else f"s.{col}"
        if col in e.null_outside:
            lo, hi = e.null_outside[col]
            expr = f"CASE WHEN {expr} BETWEEN {lo} AND {hi} THEN {expr} END"
        cols.append(f"CAST({expr} AS {_type(topic, col)}) AS {col}")
    join = ""
    if topic == "flights":
        join = (
            " LEFT JOIN fp_staged_weather w"
            " ON w.origin = s.origin AND w.observed_at = s.weather_hour"
        )
    return f"SELECT {', '.join(cols)} FROM {latest}{join}"


def run_duckdb(
    settings: Settings, files: Mapping[str, Sequence[LandedFile]], tz_map: Mapping[str, str]
) -> AnchorOutput:
    """The whole transform in DuckDB: read, clean, dedupe, join, materialised as Arrow."""
    zones, airportsdata = _zone_tables(tz_map)
    out = AnchorOutput()
    started = time.perf_counter()
    with _duck(settings) as con:
        con.register("fp_zones", zones)
        con.register("fp_airportsdata", airportsdata)
        for topic in TOPICS:
            if not files.get(topic):
                continue
            _clean_topic(con, topic, _source(con, topic, files[topic]))
            if topic == "weather":
                con.execute(f"CREATE TEMP TABLE fp_staged_weather AS {_staged_sql(topic)}")
                out.staged[topic] = con.sql("FROM fp_staged_weather").to_arrow_table()
            else:
                out.staged[topic] = con.sql(_staged_sql(topic)).to_arrow_table()
            out.rejected[topic] = con.sql(
                f"""SELECT src_topic, src_partition, src_offset, _reject AS reason,
                       to_json(_raw) AS record
                FROM fp_clean_{topic} WHERE _reject IS NOT NULL"""
            ).to_arrow_table()
    out.seconds = time.perf_counter() - started
    return out


def duckdb_transform(settings: Settings) -> dict[str, Any]:
    """The DuckDB anchor on the committed landing files of ``settings``: seconds of the
    whole transform (read + clean + dedupe + join, result as Arrow) and rows per topic."""
    files, tz_map = transform_inputs(settings)
    out = run_duckdb(settings, files, tz_map)
    return {
        "seconds": round(out.seconds, 3),
        "rows_out": {t: tbl.num_rows for t, tbl in out.staged.items()},
        "rows_rejected": {t: tbl.num_rows for t, tbl in out.rejected.items()},
    }


def run_dask(
    settings: Settings,
    files: Mapping[str, Sequence[LandedFile]],
    tz_map: Mapping[str, str],
    client: Any,
) -> tuple[graph.TransformResult, float]:
    """The Dask graph exactly as ``load.transform`` runs it; wall seconds of ``graph.run``."""
    started = time.perf_counter()
    result = graph.run(client, files, tz_map, timeout=settings.dask_compute_timeout)
    return result, time.perf_counter() - started


def dask_transform(settings: Settings, client: Any = None) -> dict[str, Any]:
    """The Dask side in the same shape as :func:`duckdb_transform`."""
    files, tz_map = transform_inputs(settings)
    if client is None:
        with dask_client(settings) as own:
            result, seconds = run_dask(settings, files, tz_map, own)
    else:
        result, seconds = run_dask(settings, files, tz_map, client)
    return {
        "seconds": round(seconds, 3),
        "rows_out": {t: len(o.staged) for t, o in result.topics.items()},
        "rows_rejected": {t: len(o.rejected) for t, o in result.topics.items()},
    }


# --- agreement ----------------------------------------------------------------------------------


def _compare_topic(
    con: duckdb.DuckDBPyConnection, topic: str, dask: graph.TransformResult, duck: AnchorOutput
) -> dict[str, Any]:
    """Rows, natural keys and every staging column (NULL = NULL) of one topic's staged rows,
    and the rejected rows by lineage and reason."""
    e = entity(topic)
    con.register("fp_a", pa.Table.from_pandas(dask.staged(topic), preserve_index=False))
    con.register("fp_b", duck.staged.get(topic, pa.table({c: [] for c in e.staging_columns})))
    on = " AND ".join(f"a.{k} = b.{k}" for k in e.natural_key)
    first = e.natural_key[0]
    others = [c for c in e.staging_columns if c not in e.natural_key]
    diffs = ", ".join(
        f"count(*) FILTER (WHERE a.{first} IS NOT NULL AND b.{first} IS NOT NULL"
        f" AND a.{c} IS DISTINCT FROM b.{c}) AS {c}"
        for c in others
    )
    row = con.sql(
        f"""SELECT count(a.{first}), count(b.{first}),
               count(*) FILTER (WHERE b.{first} IS NULL),
               count(*) FILTER (WHERE a.{first} IS NULL), {diffs}
        FROM fp_a a FULL JOIN fp_b b ON {on}"""
    ).fetchall()[0]
    columns = {c: int(n) for c, n in zip(others, row[4:], strict=True) if n}
    examples = {}
    for col in list(columns)[:5]:
        examples[col] = [
            {k: str(v) for k, v in zip([*e.natural_key, "dask", "duckdb"], r, strict=True)}
            for r in con.sql(
                f"""SELECT {", ".join(f"a.{k}" for k in e.natural_key)}, a.{col}, b.{col}
                FROM fp_a a JOIN fp_b b ON {on} WHERE a.{col} IS DISTINCT FROM b.{col}
                ORDER BY ALL LIMIT 3"""
            ).fetchall()
        ]
    rejected = _compare_rejected(con, topic, dask, duck)
    con.unregister("fp_a")
    con.unregister("fp_b")
    return {
        "rows": {"dask": int(row[0]), "duckdb": int(row[1])},
        "keys_only_in_dask": int(row[2]),
        "keys_only_in_duckdb": int(row[3]),
        "columns_differ": columns,
        "examples": examples,
        "rejected": rejected,
    }


def _compare_rejected(
    con: duckdb.DuckDBPyConnection, topic: str, dask: graph.TransformResult, duck: AnchorOutput
) -> dict[str, int]:
    out = dask.topics.get(topic)
    cols = ["src_partition", "src_offset", "reason"]
    a = (
        pa.table({c: [] for c in cols})
        if out is None
        else pa.Table.from_pandas(out.rejected[cols], preserve_index=False)
    )
    con.register("fp_ra", a)
    con.register("fp_rb", duck.rejected.get(topic, pa.table({c: [] for c in cols})))
    row = con.sql(
        """SELECT count(a.src_offset), count(b.src_offset),
               count(*) FILTER (WHERE b.src_offset IS NULL),
               count(*) FILTER (WHERE a.src_offset IS NULL),
               count(*) FILTER (WHERE a.reason IS DISTINCT FROM b.reason
                                AND a.src_offset IS NOT NULL AND b.src_offset IS NOT NULL)
        FROM fp_ra a FULL JOIN fp_rb b
            ON a.src_partition = b.src_partition AND a.src_offset = b.src_offset"""
    ).fetchall()[0]
    con.unregister("fp_ra")
    con.unregister("fp_rb")
    names = ["dask", "duckdb", "only_in_dask", "only_in_duckdb", "reason_differs"]
    return {n: int(v) for n, v in zip(names, row, strict=True)}


def _agrees(topic: dict[str, Any]) -> bool:
    r = topic["rejected"]
    return (
        topic["rows"]["dask"] == topic["rows"]["duckdb"]
        and not topic["keys_only_in_dask"]
        and not topic["keys_only_in_duckdb"]
        and not topic["columns_differ"]
        and r["dask"] == r["duckdb"]
        and not (r["only_in_dask"] or r["only_in_duckdb"] or r["reason_differs"])
    )


def compare_with_dask(settings: Settings, client: Any = None) -> dict[str, Any]:
    """Run both on the same landed files and compare the staged rows per topic: row counts,
    the set of natural keys and every staging column (for flights the UTC departure and
    arrival times, delays and joined weather among them), plus the rejected rows.

    ``agree`` is True when nothing differs; otherwise ``topics[t]["columns_differ"]`` names
    each differing column with its number of rows (matched by natural key)."""
    files, tz_map = transform_inputs(settings)
    if client is None:
        with dask_client(settings) as own:
            dask, dask_s = run_dask(settings, files, tz_map, own)
    else:
        dask, dask_s = run_dask(settings, files, tz_map, client)
    duck = run_duckdb(settings, files, tz_map)
    topics: dict[str, Any] = {}
    with _duck(settings) as con:
        for topic in TOPICS:
            if files.get(topic):
                topics[topic] = _compare_topic(con, topic, dask, duck)
    return {
        "agree": all(_agrees(t) for t in topics.values()),
        "topics": topics,
        "seconds": {"dask": round(dask_s, 3), "duckdb": round(duck.seconds, 3)},
    }


# --- CLI ---------------------------------------------------------------------------------------


def _land_year(settings: Settings) -> int:
    """Land the whole year the way the ingest DAG does (``pipeline.ingest``), as
    bench/stages.py."""
    ingested = pipeline.ingest(None, timeout=600, settings=settings)
    events = sum(int(p["produced"]) for p in ingested["produced"])
    if ingested["landed"] != events:
        raise RuntimeError(f"produced {events} events but landed {ingested['landed']}")
    return int(ingested["landed"])


def _timed(settings: Settings, repeats: int) -> dict[str, Any]:
    """Dask and DuckDB ``repeats`` times each, interleaved, on the same inputs."""
    files, tz_map = transform_inputs(settings)
    tries: dict[str, list[float]] = {"dask": [], "duckdb": []}
    with dask_client(settings) as client:
        for i in range(repeats):
            _, seconds = run_dask(settings, files, tz_map, client)
            tries["dask"].append(round(seconds, 3))
            tries["duckdb"].append(round(run_duckdb(settings, files, tz_map).seconds, 3))
            say(
                f"  try {i + 1}: dask {tries['dask'][-1]:.2f} s, duckdb {tries['duckdb'][-1]:.2f} s"
            )
    medians = {k: statistics.median(v) for k, v in tries.items()}
    return {
        "tries_seconds": tries,
        "median_seconds": medians,
        "dask_over_duckdb": round(medians["dask"] / medians["duckdb"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Whole year in an isolated pipeline: compare the Dask transform with the "
        "single-process DuckDB anchor, then time both, interleaved."
    )
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs of each (median).")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    base = Settings()
    report: dict[str, Any] = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    say(f"{os.cpu_count()} cores, load average {report['load_average_at_start']} at start")
    with children_log(OUT_DIR / "anchor-children.log"), isolated(base, "anchor") as settings:
        say("landing the whole year (produce + consume) ...")
        report["landed"] = _land_year(settings)
        say(f"  landed {report['landed']:,} rows; comparing Dask and DuckDB ...")
        report["comparison"] = compare_with_dask(settings)
        say(f"  agree: {report['comparison']['agree']}")
        say(f"timing {args.repeats}x each, interleaved ...")
        report["timing"] = _timed(settings, args.repeats)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = OUT_DIR / "anchor.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    med = report["timing"]["median_seconds"]
    say(
        f"median: dask {med['dask']:.2f} s, duckdb {med['duckdb']:.2f} s, "
        f"ratio {report['timing']['dask_over_duckdb']}x; load average "
        f"{report['load_average_at_end']} at end; {out.relative_to(OUT_DIR.parent.parent)}"
    )
    print(json.dumps(report["comparison"], indent=2), flush=True)


if __name__ == "__main__":
    main()
