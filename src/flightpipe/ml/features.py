"""Features of the arrival-delay model, read from the warehouse with SQL.

Every feature is known before departure: the schedule, the route, the aircraft and the
weather observed at the origin in the scheduled departure hour. The label is an arrival more
than 15 minutes late; cancelled and diverted flights have no arrival delay and so no label.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from flightpipe.warehouse import binary_copy

LABEL: Final = "late"
LATE_MINUTES: Final = 15
CATEGORICAL: Final = ("carrier", "origin", "dest")
NUMERIC: Final = (
    "sched_hour",
    "weekday",
    "month",
    "distance_mi",
    "plane_age",
    "temp_f",
    "dewp_f",
    "humid_pct",
    "wind_speed_mph",
    "wind_gust_mph",
    "precip_in",
    "pressure_mb",
    "visib_mi",
)
FEATURES: Final = CATEGORICAL + NUMERIC

# The weather comes from the hourly fact (all its measures), joined on the flight's
# departure hour at the origin, rather than from the few wx_* columns copied onto the fact.
# Its measures are numeric, and PostgreSQL casts numeric to float8 through text: the
# subquery casts them once per hourly observation instead of once per flight (OFFSET 0
# keeps the planner from pulling the casts up into the join).
#
# Every column is fixed-width and never NULL, so the result travels as a binary COPY that
# numpy decodes in one call (binary_copy.decode_fixed; CSV formatting and parsing cost more
# than the query itself): a missing measure is NaN, a missing label -1, and the carrier and
# airports come as keys, named from the small dimensions afterwards (the foreign keys
# guarantee every key is there, so no join is needed). Rows are sorted by flight key in
# Python: a sort in the query spilled to disk.
_FEATURES_SQL: Final = """
SELECT f.flight_key,
       d.full_date,
       f.sched_dep_at,
       f.airline_key,
       f.origin_airport_key,
       f.dest_airport_key,
       ((f.sched_dep_time / 100)::int)::float8,
       d.day_of_week::float8,
       d.month::float8,
       f.distance_mi::float8,
       coalesce((d.year - p.year_built)::float8, 'NaN'),
       coalesce(w.temp_f, 'NaN'),
       coalesce(w.dewp_f, 'NaN'),
       coalesce(w.humid_pct, 'NaN'),
       coalesce(w.wind_speed_mph, 'NaN'),
       coalesce(w.wind_gust_mph, 'NaN'),
       coalesce(w.precip_in, 'NaN'),
       coalesce(w.pressure_mb, 'NaN'),
       coalesce(w.visib_mi, 'NaN'),
       coalesce((f.arr_delay_min > {late_minutes})::int::int2, (-1)::int2)
FROM dw.fact_flight AS f
JOIN dw.dim_date AS d ON d.date_key = f.date_key
JOIN dw.dim_plane AS p ON p.plane_key = f.plane_key
LEFT JOIN (
    SELECT airport_key, observed_at,
           temp_f::float8 AS temp_f,
           dewp_f::float8 AS dewp_f,
           humid_pct::float8 AS humid_pct,
           wind_speed_mph::float8 AS wind_speed_mph,
           wind_gust_mph::float8 AS wind_gust_mph,
           precip_in::float8 AS precip_in,
           pressure_mb::float8 AS pressure_mb,
           visib_mi::float8 AS visib_mi
    FROM dw.fact_weather_hourly
    OFFSET 0
) AS w ON w.airport_key = f.origin_airport_key AND w.observed_at = f.weather_hour
WHERE {where}
"""
# The columns of _FEATURES_SQL in order, with their binary COPY types.
_COLUMNS: Final = (
    ("flight_key", ">i8"),
    ("flight_date", ">i4"),  # date: days since 2000-01-01
    ("sched_dep_at", ">i8"),  # timestamptz: microseconds since 2000-01-01 UTC
    ("carrier", ">i8"),
    ("origin", ">i8"),
    ("dest", ">i8"),
    *((name, ">f8") for name in NUMERIC),
    (LABEL, ">i2"),
)
_PG_EPOCH: Final = np.datetime64("2000-01-01T00:00:00", "us")
_CODES_SQL: Final = {
    "carrier": "SELECT airline_key, carrier_code FROM dw.dim_airline",
    "airport": "SELECT airport_key, faa_code FROM dw.dim_airport",
}

_LABELLED: Final = sql.SQL("f.arr_delay_min IS NOT NULL")
_NOT_SCORED: Final = sql.SQL(
    "NOT EXISTS (SELECT 1 FROM ml.predictions AS s"
    " WHERE s.flight_key = f.flight_key AND s.model_run_id = %(model_run_id)s)"
)


def _query(where: sql.Composable) -> sql.Composed:
    return sql.SQL(_FEATURES_SQL).format(where=where, late_minutes=sql.Literal(LATE_MINUTES))


def _records(
    conn: psycopg.Connection, query: sql.Composable, params: dict[str, object] | None
) -> np.ndarray:
    """The rows of ``query`` (laid out as :data:`_COLUMNS`) ordered by flight key."""
    copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT binary)").format(query)
    data = bytearray()
    with conn.cursor() as cur, cur.copy(copy, params) as stream:
        # Appended block by block: joining them at the end kept one buffer per row alive
        # and made the read 60 % slower.
        for block in stream:
            data += block
    rows = binary_copy.decode_fixed(data, _COLUMNS)
    return rows[np.argsort(rows["flight_key"].astype(np.int64))]


def _codes(conn: psycopg.Connection, query: str) -> pd.Series:
    """A dimension's codes by key."""
    return pd.Series(dict(conn.execute(query).fetchall()), dtype="string")


def _named(codes: pd.Series, keys: np.ndarray) -> pd.Series:
    """The codes of ``keys`` (a missing value for an unknown key)."""
    return codes.reindex(keys.astype(np.int64)).reset_index(drop=True)


def _dates(days: np.ndarray) -> np.ndarray:
    """``datetime.date`` objects from days since 2000-01-01; one object per distinct day."""
    distinct, index = np.unique(days, return_inverse=True)
    as_dates = (_PG_EPOCH.astype("datetime64[D]") + distinct).astype(object)
    return np.asarray(as_dates, dtype=object)[index]


def read_frame(
    conn: psycopg.Connection, where: sql.Composable, params: dict[str, object] | None = None
) -> pd.DataFrame:
    """The flights matching ``where`` (on ``f``, the fact) with their features and label,
    ordered by flight key; a label is missing where the flight did not arrive."""
    rows = _records(conn, _query(where), params)
    carriers = _codes(conn, _CODES_SQL["carrier"])
    airports = _codes(conn, _CODES_SQL["airport"])
    label = rows[LABEL].astype(np.int8)
    departures = _PG_EPOCH + rows["sched_dep_at"].astype(np.int64).astype("timedelta64[us]")
    return pd.DataFrame(
        {
            "flight_key": rows["flight_key"].astype(np.int64),
            "flight_date": _dates(rows["flight_date"].astype(np.int64)),
            "sched_dep_at": pd.DatetimeIndex(departures).tz_localize("UTC"),
            "carrier": _named(carriers, rows["carrier"]),
            "origin": _named(airports, rows["origin"]),
            "dest": _named(airports, rows["dest"]),
            **{name: rows[name].astype(np.float64) for name in NUMERIC},
            LABEL: pd.arrays.IntegerArray(label, mask=label < 0),
        }
    )


def training_frame(conn: psycopg.Connection) -> pd.DataFrame:
    """Every flight with a label (it arrived), with its features."""
    frame = read_frame(conn, _LABELLED)
    frame[LABEL] = frame[LABEL].astype("int8")
    return frame


def scoring_frame(conn: psycopg.Connection, model_run_id: int) -> pd.DataFrame:
    """Every flight the model ``model_run_id`` has not scored yet, cancelled ones included.

    A prediction is made before departure, so whether the flight later arrived does not
    decide whether it is scored.
    """
    return read_frame(conn, _NOT_SCORED, {"model_run_id": model_run_id})


def feature_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model inputs in a fixed column order, missing categories as missing values."""
    out = frame.loc[:, list(FEATURES)].copy()
    for col in CATEGORICAL:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out
