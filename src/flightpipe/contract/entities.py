"""One declarative contract per entity: everything every layer needs to know about it.

An :class:`Entity` holds the topic (partitions, compaction), the wire event (its Struct,
whose bounds make every decoded event fit its staging column), the natural key, the staging
columns with their PostgreSQL types, and the value rules. The producers, the consumer and
its DLQ, the cleaner, the staging DDL and COPY, the load's quarantine and the data checks all
read these; none of them restates a rule.

Value rules come in two kinds:

* ``null_outside``: a measurement outside its plausible range is a sensor error; the cleaner
  turns it into NULL and keeps the row;
* ``rules``: SQL predicates that select an offending row of the entity's resolved staging
  view or of its fact table (alias ``f``, origin and destination airports ``o`` and ``d``).
  The load moves offending staged rows to ``meta.rejected_rows`` (reason: the rule's name)
  before the upsert, and the data checks run the same predicates on what was loaded: they
  find rows only when the pipeline has a bug, never because of input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from flightpipe.contract.events import (
    AirlineEvent,
    AirportEvent,
    Event,
    FlightEvent,
    PlaneEvent,
    WeatherEvent,
)

# Kafka lineage columns of a landed row (after the event's own fields).
LINEAGE: Final = ("_topic", "_partition", "_offset")
# Every staged row carries where it came from.
SOURCE: Final = ("src_topic", "src_partition", "src_offset")


@dataclass(frozen=True)
class Column:
    """A staging column: name, PostgreSQL type, nullability."""

    name: str
    pg_type: str
    nullable: bool = True


def _cols(spec: str) -> tuple[Column, ...]:
    """``"name type[!]; ..."``: ``!`` marks NOT NULL. Compact, so a table reads as one block."""
    out = []
    for part in spec.split(";"):
        name, pg_type = part.strip().split(" ", 1)
        required = pg_type.endswith("!")
        out.append(Column(name, pg_type.rstrip("!"), nullable=not required))
    return tuple(out)


_LINEAGE_REQUIRED: Final = "src_topic text!; src_partition integer!; src_offset bigint!"


@dataclass(frozen=True)
class Entity:
    event: type[Event]
    # Staging column names that identify a row (the upsert's and the dedupe's key).
    natural_key: tuple[str, ...]
    staging: tuple[Column, ...]
    # Which setting gives the partition count; None: one partition.
    partitions_setting: str | None = None
    # Reference data is state, not history: compaction keeps the latest row per key.
    compacted: bool = False
    null_outside: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    rules: Mapping[str, str] = field(default_factory=dict)
    # The dw table the staged rows become, for the data checks of ``rules``.
    fact_table: str | None = None

    @property
    def name(self) -> str:
        """The topic name (before any prefix), as the wire Struct declares it."""
        return self.event.topic

    @property
    def staging_columns(self) -> list[str]:
        return [c.name for c in self.staging]

    @property
    def event_fields(self) -> tuple[str, ...]:
        return tuple(self.event.__struct_fields__)

    @property
    def raw_columns(self) -> list[str]:
        """What the cleaner reads from a landed file: the event fields and the lineage."""
        skip = ("schema_version", "producer", "event_time")
        return [f for f in self.event_fields if f not in skip] + list(LINEAGE)

    def pg_type(self, column: str) -> str:
        for c in self.staging:
            if c.name == column:
                return c.pg_type
        raise KeyError(f"{self.name}: no staging column {column!r}")


def _range_rules(prefix: str, ranges: Mapping[str, tuple[float, float]]) -> dict[str, str]:
    return {
        f"{prefix}.{col}_in_range": f"f.{col} NOT BETWEEN {lo} AND {hi}"
        for col, (lo, hi) in ranges.items()
    }


# Plausible ranges of a flight's measurements (minutes, miles); the warehouse's CHECK
# constraints are wider and only stop the impossible.
FLIGHT_RANGES: Final = {
    "dep_delay_min": (-180, 1800),
    "arr_delay_min": (-240, 1800),
    "air_time_min": (5, 1000),
    "distance_mi": (10, 6000),
}

FLIGHTS = Entity(
    event=FlightEvent,
    natural_key=("year", "month", "day", "carrier", "flight_number", "origin"),
    staging=_cols(
        "year smallint!; month smallint!; day smallint!; carrier text!; flight_number smallint!;"
        " origin text!; dest text!; tailnum text; sched_dep_time smallint!; dep_time smallint;"
        " sched_arr_time smallint!; arr_time smallint; sched_dep_at timestamptz!;"
        " dep_at timestamptz; sched_arr_at timestamptz; arr_at timestamptz;"
        " weather_hour timestamptz!;"
        " dep_delay_min smallint; arr_delay_min smallint; air_time_min smallint;"
        " distance_mi smallint!; is_cancelled boolean!; is_diverted boolean!;"
        " wx_temp_f double precision; wx_humid_pct double precision;"
        " wx_wind_speed_mph double precision; wx_precip_in double precision;"
        " wx_visib_mi double precision; " + _LINEAGE_REQUIRED
    ),
    partitions_setting="flights_partitions",
    fact_table="fact_flight",
    # The first rule a row breaks is its reason: plain ranges first, they say the most.
    rules={
        **_range_rules("flight", FLIGHT_RANGES),
        "flight.sched_departure_matches_local_source": """
            o.tzone IS NOT NULL AND (
                to_char(f.sched_dep_at AT TIME ZONE o.tzone, 'YYYYMMDD')::integer <> f.date_key
                OR to_char(f.sched_dep_at AT TIME ZONE o.tzone, 'HH24MI')::integer
                   <> f.sched_dep_time)""",
        "flight.sched_arrival_matches_local_source": """
            d.tzone IS NOT NULL AND to_char(f.sched_arr_at AT TIME ZONE d.tzone, 'HH24MI')::integer
                <> f.sched_arr_time""",
        # Unknown when the destination's time zone is unknown (neither the reference nor
        # airportsdata has the code).
        "flight.sched_arrival_known": "f.sched_arr_at IS NULL",
        "flight.sched_arrival_after_departure": """
            f.sched_arr_at <= f.sched_dep_at
            OR f.sched_arr_at > f.sched_dep_at + interval '24 hours'""",
        "flight.arrival_after_departure": "f.arr_at <= f.dep_at",
        "flight.flags_consistent": """
            f.is_diverted <> (NOT f.is_cancelled
                              AND (f.arr_delay_min IS NULL OR f.arr_time IS NULL))
            OR f.is_cancelled <> (f.dep_time IS NULL)
            OR f.is_cancelled <> (f.dep_at IS NULL)""",
        "flight.departure_in_weather_hour": """
            date_trunc('hour', f.weather_hour AT TIME ZONE 'UTC')
                <> f.weather_hour AT TIME ZONE 'UTC'
            OR f.sched_dep_at < f.weather_hour
            OR f.sched_dep_at >= f.weather_hour + interval '1 hour'""",
    },
)

# Plausible ranges of the hourly measurements; outside is a sensor error (NULL, row kept).
WEATHER_RANGES: Final = {
    "temp_f": (-40, 125),
    "dewp_f": (-100, 100),
    "humid_pct": (0, 100),
    "wind_dir_deg": (0, 360),
    "wind_speed_mph": (0, 150),
    "wind_gust_mph": (0, 300),
    "precip_in": (0, 5),
    "pressure_mb": (900, 1100),
    "visib_mi": (0, 10),
}

WEATHER = Entity(
    event=WeatherEvent,
    natural_key=("origin", "observed_at"),
    staging=_cols(
        "origin text!; observed_at timestamptz!; local_date date!; local_hour smallint!;"
        " temp_f double precision; dewp_f double precision; humid_pct double precision;"
        " wind_dir_deg smallint; wind_speed_mph double precision;"
        " wind_gust_mph double precision; precip_in double precision;"
        " pressure_mb double precision; visib_mi double precision; " + _LINEAGE_REQUIRED
    ),
    partitions_setting="weather_partitions",
    fact_table="fact_weather_hourly",
    null_outside=WEATHER_RANGES,
    # Checks only: the cleaner has already nulled these, so a hit is a bug.
    rules=_range_rules("weather", WEATHER_RANGES),
)

AIRLINES = Entity(
    event=AirlineEvent,
    natural_key=("carrier",),
    staging=_cols("carrier text!; name text!; " + _LINEAGE_REQUIRED),
    compacted=True,
)

AIRPORTS = Entity(
    event=AirportEvent,
    natural_key=("faa",),
    # Lineage is nullable: airportsdata candidates for unknown codes have none.
    staging=_cols(
        "faa text!; name text!; latitude double precision; longitude double precision;"
        " altitude_ft integer; utc_offset_h smallint; dst_rule text; tzone text;"
        " tzone_source text; member_source text!; src_topic text; src_partition integer;"
        " src_offset bigint"
    ),
    compacted=True,
    null_outside={
        "latitude": (-90, 90),
        "longitude": (-180, 180),
        "altitude_ft": (-1500, 30000),
        "utc_offset_h": (-12, 14),
    },
)

PLANES = Entity(
    event=PlaneEvent,
    natural_key=("tailnum",),
    staging=_cols(
        "tailnum text!; year_built smallint; aircraft_type text; manufacturer text;"
        " model text; engines smallint; seats smallint; speed_mph smallint; engine_type text; "
        + _LINEAGE_REQUIRED
    ),
    compacted=True,
    null_outside={
        "year_built": (1900, 2100),
        "engines": (0, 8),
        "seats": (0, 1000),
        "speed_mph": (0, 1000),
    },
)

# Load order: reference dimensions first, weather before the flights that join it.
ENTITIES: Final[Mapping[str, Entity]] = {
    e.name: e for e in (AIRLINES, AIRPORTS, PLANES, WEATHER, FLIGHTS)
}
TOPICS: Final = tuple(ENTITIES)
REFERENCE_TOPICS: Final = tuple(n for n, e in ENTITIES.items() if e.compacted)


def entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        raise KeyError(f"no entity {name!r}; known: {', '.join(ENTITIES)}") from None


def partitions(e: Entity, settings: object) -> int:
    return int(getattr(settings, e.partitions_setting)) if e.partitions_setting else 1
