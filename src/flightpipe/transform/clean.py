"""Pure pandas steps of the transformation, one landed topic partition at a time.

Every ``clean_*`` function takes the raw landed rows of one Kafka partition and returns the
staging-shaped frame plus two bookkeeping columns: ``_reject`` (reason, NA for good rows) and
``_record`` (the raw row as JSON, only for rejected rows). Rows are never silently dropped:
a row is either deduplicated (an older redelivery of the same key), rejected, or kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Final

import numpy as np
import pandas as pd

from flightpipe.contract import entity

WEATHER_JOIN: Final = {
    "temp_f": "wx_temp_f",
    "humid_pct": "wx_humid_pct",
    "wind_speed_mph": "wx_wind_speed_mph",
    "precip_in": "wx_precip_in",
    "visib_mi": "wx_visib_mi",
}
BOOKKEEPING: Final = ["_reject", "_record"]
UTC: Final = "UTC"
TS_DTYPE: Final = pd.DatetimeTZDtype(unit="us", tz=UTC)
# pandas dtype of each PostgreSQL staging type, so every Dask partition matches its meta.
PANDAS_DTYPES: Final[Mapping[str, Any]] = {
    "smallint": "Int16",
    "integer": "Int32",
    "bigint": "Int64",
    "text": "str",
    "double precision": "float64",
    "boolean": "bool",
    "timestamptz": TS_DTYPE,
    "date": "datetime64[us]",
}


# --- small typed helpers ------------------------------------------------------------------


def _text(s: pd.Series, upper: bool = False) -> pd.Series:
    out = s.astype("str").str.strip() if len(s) else s.astype("str")
    out = out.where(s.notna())
    if upper:
        out = out.str.upper()
    return out.mask(out == "").astype("str")


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _int(s: pd.Series, dtype: str = "Int32") -> pd.Series:
    """Nullable integer; non-integral or out-of-range values become NA (validated before)."""
    f = _num(s)
    info = np.iinfo(dtype.lower())
    ok = f.notna() & (f == np.round(f)) & (f >= info.min) & (f <= info.max)
    return f.where(ok).astype(dtype)


def to_utc(s: pd.Series) -> pd.Series:
    """Timestamps as UTC, whether landed as tz-aware, naive-UTC or ISO 8601 strings."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert(UTC)
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        out = s.dt.tz_localize(UTC)
    else:
        out = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    return out.astype(TS_DTYPE)


def _minutes(s: pd.Series) -> pd.Series:
    return pd.to_timedelta(s.astype("float64"), unit="min")


def valid_hhmm(s: pd.Series, allow_2400: bool) -> pd.Series:
    top = 2400 if allow_2400 else 2359
    return (s >= 0) & (s <= top) & (s % 100 < 60)


def _records(raw: pd.DataFrame, mask: pd.Series) -> pd.Series:
    """JSON of the raw rows selected by ``mask`` (rejected rows only, so cost is negligible)."""
    out = pd.Series(pd.NA, index=raw.index, dtype="object")
    if mask.any():
        sub = raw.loc[mask]
        out.loc[mask] = [
            json.dumps({k: _jsonable(v) for k, v in row.items()}, default=str)
            for row in sub.to_dict("records")
        ]
    return out


def _jsonable(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


class _Rejects:
    """First failing rule wins; keeps the reason per row."""

    def __init__(self, index: pd.Index) -> None:
        self.reason = pd.Series(pd.NA, index=index, dtype="str")

    def add(self, bad: pd.Series, reason: str) -> None:
        bad = bad.fillna(True).astype(bool)
        self.reason = self.reason.mask(bad & self.reason.isna(), reason)

    def require(self, frame: pd.DataFrame, columns: Sequence[str]) -> None:
        for col in columns:
            self.add(frame[col].isna(), f"missing {col}")


def latest_deliveries(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Index:
    """Index of the latest delivery per natural key (max partition, offset); exact
    redeliveries of a row with an incomplete key collapse on (partition, offset) instead, so
    distinct bad rows are not merged into one and each is counted as rejected."""
    if frame.empty:
        return frame.index
    ordered = frame.sort_values(["src_partition", "src_offset"], kind="stable")
    complete = ordered[list(keys)].notna().all(axis=1)
    good = ordered[complete].drop_duplicates(list(keys), keep="last")
    bad = ordered[~complete].drop_duplicates(["src_partition", "src_offset"], keep="last")
    both = pd.concat([good, bad]).sort_values(["src_partition", "src_offset"], kind="stable")
    return both.index


def _lineage(out: pd.DataFrame, raw: pd.DataFrame) -> None:
    out["src_topic"] = raw["_topic"].astype("str")
    out["src_partition"] = _int(raw["_partition"], "Int32")
    out["src_offset"] = _int(raw["_offset"], "Int64")


def dtypes(topic: str) -> dict[str, Any]:
    """Exact output dtypes of a cleaner, read from the contract's staging types."""
    out = {c.name: PANDAS_DTYPES[c.pg_type] for c in entity(topic).staging}
    return {**out, "_reject": "str", "_record": "object"}


def _finish(out: pd.DataFrame, raw: pd.DataFrame, rejects: _Rejects, topic: str) -> pd.DataFrame:
    """Contract ranges, then the latest delivery per key, then the staging shape."""
    contract = entity(topic)
    for col, (lo, hi) in contract.null_outside.items():
        out[col] = out[col].where(out[col].between(lo, hi))
    out["_reject"] = rejects.reason
    keep = latest_deliveries(out, contract.natural_key)
    out, raw = out.loc[keep], raw.loc[keep]
    out["_record"] = _records(raw, out["_reject"].notna())
    frame = out[[*contract.staging_columns, *BOOKKEEPING]].reset_index(drop=True)
    return frame.astype(dtypes(topic))


def _prepare(raw: pd.DataFrame, topic: str) -> pd.DataFrame:
    """Lineage as integers and event times as UTC, so keys compare like with like."""
    raw = raw.copy()
    raw["_partition"] = _int(raw["_partition"], "Int32")
    raw["_offset"] = _int(raw["_offset"], "Int64")
    raw["_topic"] = _text(raw["_topic"])
    if "time_hour" in raw.columns:
        raw["time_hour"] = to_utc(raw["time_hour"])
    return raw


def _empty_raw(topic: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in entity(topic).raw_columns})


# --- time zones ---------------------------------------------------------------------------


@cache
def _airportsdata() -> Mapping[str, Mapping[str, Any]]:
    import airportsdata

    return airportsdata.load("IATA")


def airportsdata_tz(code: str) -> str | None:
    """IANA zone of an airport code from the airportsdata package (fallback only)."""
    entry = _airportsdata().get(code)
    return None if entry is None else (entry.get("tz") or None)


def zones_for(codes: pd.Series, tz_map: Mapping[str, str]) -> pd.Series:
    """Zone per airport code: the warehouse/reference map first, then airportsdata."""
    lookup: dict[str, str | None] = {}
    for code in codes.dropna().unique():
        lookup[code] = tz_map.get(code) or airportsdata_tz(code)
    return codes.map(lookup).astype("str")


def local_hhmm_to_utc(
    local_date: pd.Series,
    hhmm: pd.Series,
    zone: pd.Series,
    not_before: pd.Series,
    max_days: int,
) -> pd.Series:
    """UTC instant of a local clock time ``hhmm`` on ``local_date`` (or up to ``max_days``
    later): the first such instant not before ``not_before``. That rolls arrivals past
    midnight onto the next day and handles each destination's own time zone and DST.

    Ambiguous local times (the repeated hour when DST ends) resolve to standard time and
    non-existent ones (the skipped hour) shift forward: neither occurs in scheduled times of
    the data, but the rule must be total.
    """
    n = len(hhmm)
    nat = np.iinfo(np.int64).min
    result = np.full(n, nat, dtype=np.int64)
    usable = (hhmm.notna() & zone.notna() & local_date.notna() & not_before.notna()).to_numpy()
    if usable.any():
        minutes = hhmm.astype("float64").to_numpy()
        clock = ((minutes // 100) * 60 + minutes % 100).astype("float64")
        base = local_date.astype("datetime64[us]").to_numpy()
        floor = not_before.astype(TS_DTYPE).dt.tz_localize(None).to_numpy().astype(np.int64)
        zones = zone.to_numpy(dtype=object)
        for tz_name in pd.unique(zones[usable]):
            pos = np.flatnonzero(usable & (zones == tz_name))
            for days in range(max_days + 1):
                if pos.size == 0:
                    break
                naive = pd.DatetimeIndex(
                    base[pos]
                    + np.timedelta64(days, "D")
                    + (clock[pos] * 60_000_000).astype("timedelta64[us]")
                )
                at = (
                    naive.tz_localize(
                        str(tz_name),
                        ambiguous=np.zeros(pos.size, dtype=bool),
                        nonexistent="shift_forward",
                    )
                    .tz_convert(UTC)
                    .as_unit("us")
                    .asi8
                )
                take = at >= floor[pos]
                result[pos[take]] = at[take]
                pos = pos[~take]
    return pd.Series(
        pd.DatetimeIndex(result.view("datetime64[us]")).tz_localize(UTC), index=hhmm.index
    ).astype(TS_DTYPE)


# --- flights ------------------------------------------------------------------------------


def clean_flights(raw: pd.DataFrame, tz_map: Mapping[str, str]) -> pd.DataFrame:
    """Landed flight events -> staging rows: typed, UTC times, flags, validated.

    Scheduled departure (UTC) is ``time_hour`` (already UTC) plus ``minute``: exact, and it
    sidesteps the ambiguous local hour at the DST change. Actual times are scheduled times
    plus the delays; local hhmm clocks are only a fallback when a delay is missing.
    """
    raw = _prepare(raw, "flights")
    rej = _Rejects(raw.index)
    out = pd.DataFrame(index=raw.index)
    out["year"] = _int(raw["year"], "Int16")
    out["month"] = _int(raw["month"], "Int16")
    out["day"] = _int(raw["day"], "Int16")
    out["carrier"] = raw["carrier"]
    out["flight_number"] = _int(raw["flight"], "Int16")
    out["origin"] = raw["origin"]
    out["dest"] = raw["dest"]
    out["tailnum"] = raw["tailnum"]
    for col in ("sched_dep_time", "dep_time", "sched_arr_time", "arr_time"):
        out[col] = _int(raw[col], "Int16")
    out["dep_delay_min"] = _int(raw["dep_delay"], "Int16")
    out["arr_delay_min"] = _int(raw["arr_delay"], "Int16")
    out["air_time_min"] = _int(raw["air_time"], "Int16")
    out["distance_mi"] = _int(raw["distance"], "Int16")
    minute = _int(raw["minute"], "Int16").fillna(out["sched_dep_time"] % 100)

    rej.require(out, ["year", "month", "day", "carrier", "flight_number", "origin", "dest"])
    rej.require(out, ["sched_dep_time", "sched_arr_time", "distance_mi"])
    rej.add(raw["time_hour"].isna(), "missing or unparsable time_hour")
    local_date = pd.to_datetime(
        pd.DataFrame({"year": out["year"], "month": out["month"], "day": out["day"]}).astype(
            "float64"
        ),
        errors="coerce",
    )
    rej.add(local_date.isna(), "invalid date")
    rej.add(~valid_hhmm(out["sched_dep_time"], allow_2400=False), "invalid sched_dep_time")
    rej.add(~valid_hhmm(out["sched_arr_time"], allow_2400=False), "invalid sched_arr_time")
    rej.add(out["dep_time"].notna() & ~valid_hhmm(out["dep_time"], True), "invalid dep_time")
    rej.add(out["arr_time"].notna() & ~valid_hhmm(out["arr_time"], True), "invalid arr_time")
    rej.add(raw["dep_delay"].notna() & out["dep_delay_min"].isna(), "invalid dep_delay")
    rej.add(raw["arr_delay"].notna() & out["arr_delay_min"].isna(), "invalid arr_delay")

    out["weather_hour"] = raw["time_hour"]
    out["sched_dep_at"] = (raw["time_hour"] + _minutes(minute)).astype(TS_DTYPE)
    out["is_cancelled"] = out["dep_time"].isna().astype("bool")
    out["is_diverted"] = (
        out["dep_time"].notna() & (out["arr_delay_min"].isna() | out["arr_time"].isna())
    ).astype("bool")

    dep_at = (out["sched_dep_at"] + _minutes(out["dep_delay_min"])).astype(TS_DTYPE)
    need = dep_at.isna() & out["dep_time"].notna()
    if need.any():
        origin_zone = zones_for(out["origin"], tz_map)
        early = out["sched_dep_at"] - pd.Timedelta(hours=2)
        guess = local_hhmm_to_utc(local_date, out["dep_time"], origin_zone, early, max_days=1)
        dep_at = dep_at.where(~need, guess)
    out["dep_at"] = dep_at

    dest_zone = zones_for(out["dest"], tz_map)
    out["sched_arr_at"] = local_hhmm_to_utc(
        local_date, out["sched_arr_time"], dest_zone, out["sched_dep_at"], max_days=1
    )
    arr_at = (out["sched_arr_at"] + _minutes(out["arr_delay_min"])).astype(TS_DTYPE)
    need = arr_at.isna() & out["arr_time"].notna()
    if need.any():
        guess = local_hhmm_to_utc(local_date, out["arr_time"], dest_zone, out["dep_at"], 2)
        arr_at = arr_at.where(~need, guess)
    out["arr_at"] = arr_at
    for col in WEATHER_JOIN.values():
        out[col] = pd.Series(np.nan, index=out.index, dtype="float64")
    _lineage(out, raw)
    return _finish(out, raw, rej, "flights")


def join_weather(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Attach the origin's weather of the scheduled departure hour (UTC) to each flight."""
    if weather.empty or flights.empty:
        return flights
    right = weather.loc[weather["_reject"].isna(), ["origin", "observed_at", *WEATHER_JOIN]]
    right = right.drop_duplicates(["origin", "observed_at"], keep="last").rename(
        columns={"observed_at": "weather_hour", **WEATHER_JOIN}
    )
    left = flights.drop(columns=list(WEATHER_JOIN.values()))
    joined = left.merge(right, how="left", on=["origin", "weather_hour"], validate="many_to_one")
    return joined[flights.columns]


# --- weather ------------------------------------------------------------------------------


def clean_weather(raw: pd.DataFrame) -> pd.DataFrame:
    """Hourly weather -> staging rows keyed by (origin, UTC hour); impossible values -> NULL."""
    raw = _prepare(raw, "weather")
    rej = _Rejects(raw.index)
    out = pd.DataFrame(index=raw.index)
    out["origin"] = raw["origin"]
    out["observed_at"] = raw["time_hour"]
    rej.require(out, ["origin"])
    rej.add(raw["time_hour"].isna(), "missing or unparsable time_hour")
    rej.add(
        raw["time_hour"].notna() & (raw["time_hour"] != raw["time_hour"].dt.floor("h")),
        "time_hour not on the hour",
    )
    parts = {c: _int(raw[c], "Int16") for c in ("year", "month", "day", "hour")}
    out["local_date"] = pd.to_datetime(
        pd.DataFrame({c: parts[c] for c in ("year", "month", "day")}).astype("float64"),
        errors="coerce",
    )
    out["local_hour"] = parts["hour"]
    rej.add(out["local_date"].isna(), "invalid date")
    rej.add(~out["local_hour"].between(0, 23).fillna(False), "invalid hour")
    sources = {
        "temp_f": "temp",
        "dewp_f": "dewp",
        "humid_pct": "humid",
        "wind_dir_deg": "wind_dir",
        "wind_speed_mph": "wind_speed",
        "wind_gust_mph": "wind_gust",
        "precip_in": "precip",
        "pressure_mb": "pressure",
        "visib_mi": "visib",
    }
    for col, src in sources.items():
        out[col] = _num(raw[src])
    out["wind_dir_deg"] = _int(out["wind_dir_deg"].round(), "Int16")
    _lineage(out, raw)
    return _finish(out, raw, rej, "weather")


# --- reference data -----------------------------------------------------------------------


def clean_airlines(raw: pd.DataFrame) -> pd.DataFrame:
    raw = _prepare(raw, "airlines")
    rej = _Rejects(raw.index)
    out = pd.DataFrame(index=raw.index)
    out["carrier"] = raw["carrier"]
    out["name"] = _text(raw["name"])
    rej.require(out, ["carrier", "name"])
    _lineage(out, raw)
    return _finish(out, raw, rej, "airlines")


def clean_airports(raw: pd.DataFrame) -> pd.DataFrame:
    raw = _prepare(raw, "airports")
    rej = _Rejects(raw.index)
    out = pd.DataFrame(index=raw.index)
    out["faa"] = raw["faa"]
    out["name"] = _text(raw["name"])
    out["latitude"] = _num(raw["lat"])
    out["longitude"] = _num(raw["lon"])
    out["altitude_ft"] = _int(raw["alt"], "Int32")
    out["utc_offset_h"] = _int(raw["tz"], "Int16")
    dst = _text(raw["dst"], upper=True)
    out["dst_rule"] = dst.where(dst.isin(["A", "U", "N", "E", "O", "S", "Z"]))
    tzone = _text(raw["tzone"])
    # The reference lacks a zone for a few airports; airportsdata fills it, flagged as such.
    fallback = out["faa"].map(lambda c: airportsdata_tz(c) if isinstance(c, str) else None)
    out["tzone"] = tzone.fillna(fallback.astype("str"))
    out["tzone_source"] = (
        pd.Series(pd.NA, index=out.index, dtype="str")
        .mask(out["tzone"].notna(), "airportsdata")
        .mask(tzone.notna(), "reference")
    )
    out["member_source"] = pd.Series("reference", index=out.index, dtype="str")
    rej.require(out, ["faa", "name"])
    _lineage(out, raw)
    return _finish(out, raw, rej, "airports")


def clean_planes(raw: pd.DataFrame) -> pd.DataFrame:
    raw = _prepare(raw, "planes")
    rej = _Rejects(raw.index)
    out = pd.DataFrame(index=raw.index)
    out["tailnum"] = raw["tailnum"]
    out["year_built"] = _int(raw["year"], "Int16")
    out["aircraft_type"] = _text(raw["type"])
    out["manufacturer"] = _text(raw["manufacturer"])
    out["model"] = _text(raw["model"])
    for col, src in (("engines", "engines"), ("seats", "seats"), ("speed_mph", "speed")):
        out[col] = _int(raw[src], "Int16")
    out["engine_type"] = _text(raw["engine"])
    rej.require(out, ["tailnum"])
    _lineage(out, raw)
    return _finish(out, raw, rej, "planes")


CLEANERS: Final = {
    "weather": clean_weather,
    "airlines": clean_airlines,
    "airports": clean_airports,
    "planes": clean_planes,
}


def clean_topic(topic: str, raw: pd.DataFrame, tz_map: Mapping[str, str]) -> pd.DataFrame:
    if topic == "flights":
        return clean_flights(raw, tz_map)
    return CLEANERS[topic](raw)


def empty_clean(topic: str) -> pd.DataFrame:
    """Zero-row output with the exact dtypes (Dask ``meta``); a copy, callers may add to it."""
    return _empty_clean(topic).copy()


@cache
def _empty_clean(topic: str) -> pd.DataFrame:
    # Cleaning even an empty frame runs every rule (about 0.1 s for flights, more while the
    # machine is busy), and each transform asks for it several times.
    return clean_topic(topic, _empty_raw(topic), {})
