"""Event types on the wire: versioned msgspec Structs, JSON encoded.

Each Struct is the wire half of an entity's contract (``flightpipe.contract.entities`` holds
the rest). Every field is bounded so that a decoded event always fits the landing Parquet and
the staging column it becomes: integers to their PostgreSQL column type, strings in length
and free of control characters (a NUL would break COPY). A failed typed decode is a schema
violation and goes to the DLQ. The JSON Schema files in ``schemas/events/`` are derived from
these Structs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final

import msgspec
from msgspec import Meta

# Bump on an incompatible change and keep the old Struct for old events; additive optional
# fields keep the version (decoders ignore unknown fields, so old consumers still work).
SCHEMA_VERSION: Final = 1
# The three NYC airports the flights depart from.
ORIGINS: Final = ("EWR", "JFK", "LGA")

# PostgreSQL integer column ranges: a value outside cannot be staged.
SMALLINT: Final = (-(2**15), 2**15 - 1)
INTEGER: Final = (-(2**31), 2**31 - 1)


def whole(body: str) -> str:
    """A pattern matching ``body`` and nothing more: ``$`` alone also matches before a
    trailing newline, which would let "AA\\n" pass as a carrier code."""
    return f"^{body}(?!\\n)$"


# Text that COPY and every later stage can carry: no C0 control characters (NUL included)
# and no DEL.
PRINTABLE: Final = r"[^\x00-\x1f\x7f]*"

SchemaVersion = Annotated[int, Meta(ge=1, le=SCHEMA_VERSION, description="Event schema version.")]
Year = Annotated[int, Meta(ge=1900, le=2100)]
Month = Annotated[int, Meta(ge=1, le=12)]
Day = Annotated[int, Meta(ge=1, le=31)]
Hour = Annotated[int, Meta(ge=0, le=23)]
Minute = Annotated[int, Meta(ge=0, le=59)]
SmallInt = Annotated[int, Meta(ge=SMALLINT[0], le=SMALLINT[1])]
NonNegativeSmallInt = Annotated[int, Meta(ge=0, le=SMALLINT[1])]
Integer = Annotated[int, Meta(ge=INTEGER[0], le=INTEGER[1])]
# Local clock time as an hhmm integer; the source uses 2400 for midnight at the end of a day.
ClockHHMM = Annotated[int, Meta(ge=0, le=2400)]
Carrier = Annotated[str, Meta(pattern=whole("[A-Z0-9]{2}"))]
AirportCode = Annotated[str, Meta(pattern=whole("[A-Z0-9]{3,4}"))]
TailNum = Annotated[str, Meta(pattern=whole("[A-Z0-9]{1,10}"))]
Name = Annotated[str, Meta(max_length=200, pattern=whole(PRINTABLE))]
Label = Annotated[str, Meta(max_length=64, pattern=whole(PRINTABLE))]
UtcTime = Annotated[datetime, Meta(tz=True, description="UTC timestamp, RFC 3339.")]
ProducerId = Annotated[
    str, Meta(min_length=1, max_length=64, description="Which producer emitted the event.")
]


def utc_iso(ts: datetime) -> str:
    """The UTC RFC 3339 spelling used in keys; identical to what msgspec writes."""
    return msgspec.json.encode(ts).decode()[1:-1]


class Event(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Base of every event; ``topic`` is the topic name before the prefix."""

    topic: ClassVar[str]
    schema_version: SchemaVersion = SCHEMA_VERSION

    def key(self) -> str:
        raise NotImplementedError


def flight_key(year: int, month: int, day: int, carrier: str, flight: int, origin: str) -> str:
    return f"{year}-{month}-{day}|{carrier}|{flight}|{origin}"


def weather_key(origin: str, time_hour: datetime) -> str:
    return f"{origin}|{utc_iso(time_hour)}"


class FlightEvent(Event, frozen=True, gc=False):
    """One scheduled departure from NYC in 2013; local times are America/New_York hhmm."""

    topic: ClassVar[str] = "flights"

    year: Year
    month: Month
    day: Day
    dep_time: ClockHHMM | None
    sched_dep_time: ClockHHMM
    dep_delay: SmallInt | None
    arr_time: ClockHHMM | None
    sched_arr_time: ClockHHMM
    arr_delay: SmallInt | None
    carrier: Carrier
    flight: Annotated[int, Meta(ge=1, le=SMALLINT[1])]
    tailnum: TailNum | None
    origin: AirportCode
    dest: AirportCode
    air_time: NonNegativeSmallInt | None
    distance: NonNegativeSmallInt
    hour: Hour
    minute: Minute
    time_hour: UtcTime
    event_time: UtcTime
    producer: ProducerId

    def key(self) -> str:
        return flight_key(self.year, self.month, self.day, self.carrier, self.flight, self.origin)


class WeatherEvent(Event, frozen=True, gc=False):
    """One hourly observation at an NYC airport; event time is ``time_hour``."""

    topic: ClassVar[str] = "weather"

    origin: AirportCode
    year: Year
    month: Month
    day: Day
    hour: Hour
    temp: float | None
    dewp: float | None
    humid: float | None
    wind_dir: float | None
    wind_speed: float | None
    wind_gust: float | None
    precip: float | None
    pressure: float | None
    visib: float | None
    time_hour: UtcTime
    event_time: UtcTime
    producer: ProducerId

    def key(self) -> str:
        return weather_key(self.origin, self.time_hour)


class AirlineEvent(Event, frozen=True, gc=False):
    topic: ClassVar[str] = "airlines"

    carrier: Carrier
    name: Name
    producer: ProducerId

    def key(self) -> str:
        return self.carrier


class AirportEvent(Event, frozen=True, gc=False):
    topic: ClassVar[str] = "airports"

    faa: AirportCode
    name: Name
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    alt: Integer
    tz: SmallInt
    dst: Label
    tzone: Label | None
    producer: ProducerId

    def key(self) -> str:
        return self.faa


class PlaneEvent(Event, frozen=True, gc=False):
    topic: ClassVar[str] = "planes"

    tailnum: TailNum
    year: Year | None
    type: Label
    manufacturer: Name
    model: Name
    engines: SmallInt
    seats: SmallInt
    speed: SmallInt | None
    engine: Label
    producer: ProducerId

    def key(self) -> str:
        return self.tailnum


EVENT_TYPES: Final[Mapping[str, type[Event]]] = {
    t.topic: t for t in (FlightEvent, WeatherEvent, AirlineEvent, AirportEvent, PlaneEvent)
}


def event_type(topic: str) -> type[Event]:
    """The event type of a topic name given without its prefix."""
    try:
        return EVENT_TYPES[topic]
    except KeyError:
        raise KeyError(f"no event type for topic {topic!r}") from None


def field_kinds(tp: type[Event]) -> dict[str, tuple[type, bool]]:
    """Field name -> (int | float | str | datetime, nullable), read from the Struct."""
    info = msgspec.inspect.type_info(tp)
    assert isinstance(info, msgspec.inspect.StructType)
    kinds: dict[str, tuple[type, bool]] = {}
    for field in info.fields:
        options = (
            list(field.type.types)
            if isinstance(field.type, msgspec.inspect.UnionType)
            else [field.type]
        )
        nullable = any(isinstance(t, msgspec.inspect.NoneType) for t in options)
        concrete = [
            t.type if isinstance(t, msgspec.inspect.Metadata) else t
            for t in options
            if not isinstance(t, msgspec.inspect.NoneType)
        ]
        if len(concrete) != 1 or type(concrete[0]) not in _KINDS:
            raise TypeError(f"{tp.__name__}.{field.name}: unsupported field type {field.type}")
        kinds[field.name] = (_KINDS[type(concrete[0])], nullable)
    return kinds


_KINDS: Final[dict[type, type]] = {
    msgspec.inspect.IntType: int,
    msgspec.inspect.FloatType: float,
    msgspec.inspect.StrType: str,
    msgspec.inspect.DateTimeType: datetime,
}


def json_schema(tp: type[Event]) -> dict[str, Any]:
    doc = msgspec.json.schema(tp)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"flightpipe/events/{tp.topic}.v{SCHEMA_VERSION}.json",
        "title": f"{tp.__name__} v{SCHEMA_VERSION} (topic {tp.topic})",
        **doc,
    }


def schema_documents() -> dict[str, str]:
    """File name -> JSON text of every event schema, as committed under ``schemas/events``."""
    return {
        f"{topic}.v{SCHEMA_VERSION}.json": json.dumps(json_schema(tp), indent=2, sort_keys=True)
        + "\n"
        for topic, tp in EVENT_TYPES.items()
    }


def export_schemas(out_dir: Path) -> list[Path]:
    """Write the JSON Schema files; the unit tests fail when the committed ones are stale."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_documents().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
