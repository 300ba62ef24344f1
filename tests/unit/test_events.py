"""Event contract: keys, JSON on the wire, validation, committed JSON Schema files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from flightpipe.contract.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    AirportEvent,
    FlightEvent,
    PlaneEvent,
    WeatherEvent,
    event_type,
    flight_key,
    schema_documents,
    weather_key,
)
from flightpipe.ingest.consume import _decode_batch as decode_batch
from flightpipe.zones.landing import META_COLUMNS, build_table, landing_schema

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"


def _flight(**changes: object) -> FlightEvent:
    fields: dict[str, object] = dict(
        year=2013, month=1, day=1, dep_time=517, sched_dep_time=515, dep_delay=2,
        arr_time=830, sched_arr_time=819, arr_delay=11, carrier="UA", flight=1545,
        tailnum="N14228", origin="EWR", dest="IAH", air_time=227, distance=1400, hour=5,
        minute=15, time_hour=datetime(2013, 1, 1, 10, tzinfo=UTC),
        event_time=datetime(2013, 1, 1, 10, 15, tzinfo=UTC), producer="test",
    )  # fmt: skip
    fields.update(changes)
    return FlightEvent(**fields)  # type: ignore[arg-type]


def _wire(**changes: object) -> bytes:
    doc = json.loads(msgspec.json.encode(_flight()))
    doc.update(changes)
    return json.dumps(doc).encode()


def test_flight_wire_format_and_key() -> None:
    event = _flight(dep_time=None, dep_delay=None, tailnum=None)
    doc = json.loads(msgspec.json.encode(event))
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["time_hour"] == "2013-01-01T10:00:00Z"
    assert doc["event_time"] == "2013-01-01T10:15:00Z"
    assert doc["dep_time"] is None and doc["tailnum"] is None
    assert event.key() == "2013-1-1|UA|1545|EWR"
    assert flight_key(2013, 12, 31, "B6", 1, "JFK") == "2013-12-31|B6|1|JFK"


def test_round_trip_is_lossless() -> None:
    event = _flight()
    assert msgspec.json.decode(msgspec.json.encode(event), type=FlightEvent) == event


def test_weather_key_is_utc() -> None:
    assert weather_key("LGA", datetime(2013, 11, 3, 5, tzinfo=UTC)) == "LGA|2013-11-03T05:00:00Z"


def test_missing_float_is_null_never_nan() -> None:
    event = WeatherEvent(
        origin="EWR", year=2013, month=1, day=1, hour=1, temp=39.02, dewp=None, humid=None,
        wind_dir=None, wind_speed=None, wind_gust=None, precip=0.0, pressure=None, visib=10.0,
        time_hour=datetime(2013, 1, 1, 6, tzinfo=UTC),
        event_time=datetime(2013, 1, 1, 6, tzinfo=UTC), producer="test",
    )  # fmt: skip
    raw = msgspec.json.encode(event)
    assert b"NaN" not in raw
    assert json.loads(raw)["wind_gust"] is None


@pytest.mark.parametrize(
    "changes",
    [
        {"month": 13},
        {"dep_time": "0517"},
        {"carrier": "united"},
        {"origin": None},
        {"time_hour": "2013-01-01 10:00"},  # no zone: local time is not accepted
        {"time_hour": "yesterday"},
        {"schema_version": SCHEMA_VERSION + 1},
        {"distance": -1},
    ],
)
def test_schema_violations_are_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(_wire(**changes), type=FlightEvent)


def test_missing_field_is_rejected() -> None:
    doc = json.loads(_wire())
    del doc["carrier"]
    with pytest.raises(msgspec.ValidationError, match="carrier"):
        msgspec.json.decode(json.dumps(doc).encode(), type=FlightEvent)


def test_unknown_fields_are_tolerated() -> None:
    # Additive changes within a schema version must not break older consumers.
    event = msgspec.json.decode(_wire(new_field=1), type=FlightEvent)
    assert event.key() == "2013-1-1|UA|1545|EWR"


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2", b"NaN"])
def test_malformed_json_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw, type=FlightEvent)


def test_nan_literal_from_a_careless_producer_is_malformed() -> None:
    # e.g. stdlib json.dumps of a pandas row writes NaN, which is not JSON.
    raw = _wire().replace(b'"air_time": 227', b'"air_time": NaN')
    assert b"NaN" in raw
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw, type=FlightEvent)


def test_reference_keys() -> None:
    airport = AirportEvent(
        faa="JFK", name="John F Kennedy Intl", lat=40.64, lon=-73.78, alt=13, tz=-5, dst="A",
        tzone="America/New_York", producer="t",
    )  # fmt: skip
    plane = PlaneEvent(
        tailnum="N10156", year=None, type="x", manufacturer="EMBRAER", model="EMB-145XR",
        engines=2, seats=55, speed=None, engine="Turbo-fan", producer="t",
    )  # fmt: skip
    assert (airport.key(), plane.key()) == ("JFK", "N10156")


def test_every_topic_has_an_event_type() -> None:
    assert set(EVENT_TYPES) == {"flights", "weather", "airlines", "airports", "planes"}
    with pytest.raises(KeyError):
        event_type("nope")


def test_committed_json_schemas_are_current() -> None:
    expected = schema_documents()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert committed == expected, (
        "schemas/events is stale: run `python -m flightpipe.ingest.cli schemas`"
    )


def test_json_schema_marks_nullable_and_required() -> None:
    doc = json.loads(schema_documents()[f"flights.v{SCHEMA_VERSION}.json"])
    flight = doc["$defs"]["FlightEvent"]
    assert "carrier" in flight["required"] and "dep_time" in flight["required"]
    assert {"type": "null"} in flight["properties"]["dep_time"]["anyOf"]
    assert flight["properties"]["event_time"]["format"] == "date-time"


def test_landing_schema_columns_and_types() -> None:
    schema = landing_schema(FlightEvent)
    assert schema.names == [*FlightEvent.__struct_fields__, *META_COLUMNS]
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("dep_time").type == pa.int64() and schema.field("dep_time").nullable
    assert not schema.field("carrier").nullable
    assert schema.field("_offset").type == pa.int64()
    assert landing_schema(WeatherEvent).field("wind_gust").type == pa.float64()


# --- batch decoding and landing tables ------------------------------------------------------
class _Msg:
    """The part of a Kafka message the landing consumer reads."""

    def __init__(self, value: bytes | None, key: bytes | None, offset: int = 0) -> None:
        self._value, self._key, self._offset = value, key, offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def offset(self) -> int:
        return self._offset


def _batch(*flights: FlightEvent) -> list[_Msg]:
    return [_Msg(msgspec.json.encode(f), f.key().encode(), i) for i, f in enumerate(flights)]


def _decode_batch(messages: list[_Msg]) -> tuple[list[Any], list[str]] | None:
    return decode_batch(FlightEvent, msgspec.json.Decoder(list[FlightEvent]), messages)  # type: ignore[arg-type]


def _three_flights() -> list[FlightEvent]:
    return [
        _flight(),
        _flight(flight=1, dep_time=None, tailnum=None),
        _flight(flight=2, time_hour=datetime(2013, 1, 1, 5, tzinfo=timezone(timedelta(hours=-5)))),
    ]


def test_batch_decode_equals_per_message_decode() -> None:
    flights = _three_flights()
    messages = _batch(*flights)
    messages[1] = _Msg(b" \n" + messages[1].value() + b"\r\n\t ", messages[1].key())  # type: ignore[operator]
    decoded = _decode_batch(messages)
    assert decoded is not None
    events, keys = decoded
    single = msgspec.json.Decoder(FlightEvent)
    assert events == [single.decode(m.value()) for m in messages] == flights  # type: ignore[arg-type]
    assert keys == [f.key() for f in flights]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda m: [*m[:1], _Msg(None, b"k")], id="tombstone"),
        pytest.param(lambda m: [*m[:1], _Msg(_wire(month=13), m[0].key())], id="schema"),
        pytest.param(lambda m: [*m[:1], _Msg(b"{not json", b"k")], id="malformed"),
        pytest.param(lambda m: [m[0], _Msg(m[1].value(), m[0].key())], id="wrong key"),
        pytest.param(lambda m: [m[0], _Msg(m[1].value(), None)], id="no key"),
        pytest.param(lambda m: [m[0], _Msg(m[1].value(), m[1].key().decode())], id="str key"),
    ],
)
def test_batch_decode_refuses_a_batch_with_a_dead_letter(spoil: Any) -> None:
    # None sends the batch through the per-message path, which sorts out the dead letters.
    assert _decode_batch(spoil(_batch(*_three_flights()))) is None


def test_batch_decode_refuses_values_that_only_parse_when_joined() -> None:
    # Joined with commas, the first two values make one event and the third makes two, so
    # the array has the right length and the right keys; alone, each value is malformed.
    a, b, c = (msgspec.json.encode(f) for f in _three_flights())
    values = [a[:-1] + b',"x":"', b'"}', b + b"," + c]
    keys = [f.key().encode() for f in _three_flights()]
    for value in values:
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(value, type=FlightEvent)
    assert msgspec.json.decode(b"[" + b",".join(values) + b"]", type=list[FlightEvent])
    assert _decode_batch([_Msg(v, k) for v, k in zip(values, keys, strict=True)]) is None


def test_landing_table_matches_the_events_row_by_row() -> None:
    flights = _three_flights()
    sent = [1_700_000_000_123, None, 1_700_000_000_456]  # Kafka record timestamps, ms
    table = build_table(FlightEvent, flights, "p.flights", 3, [7, 8, 9], ["a", "b", "c"], sent)
    schema = landing_schema(FlightEvent)
    assert table.schema == schema
    expected = {
        name: pa.array([getattr(f, name) for f in flights], schema.field(name).type)
        for name in FlightEvent.__struct_fields__
    }
    for name, column in expected.items():
        assert table.column(name).combine_chunks().equals(column), name
    assert table.column("time_hour").to_pylist()[2] == datetime(2013, 1, 1, 10, tzinfo=UTC)
    assert table.column("dep_time").null_count == table.column("tailnum").null_count == 1
    assert table.select(list(META_COLUMNS)).to_pylist()[0] == {
        "_topic": "p.flights", "_partition": 3, "_offset": 7, "_key": "a",
        "_produced_at": datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
    }  # fmt: skip
    assert table.column("_produced_at").null_count == 1
    empty = build_table(FlightEvent, [], "p.flights", 3, [], [])
    assert empty.num_rows == 0 and empty.schema == schema
    unknown = build_table(FlightEvent, flights, "p.flights", 3, [7, 8, 9], ["a", "b", "c"])
    assert unknown.column("_produced_at").null_count == 3
