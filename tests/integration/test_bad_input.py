"""No input can stop the pipeline: poison through the real consume -> transform -> load path.

Messages go onto private topics of the running broker as raw bytes, a consumer-group member
lands them, the Dask transform and the load take them into a private database. Every
produced message must end in exactly one place, a warehouse row, the DLQ or
``meta.rejected_rows``, and every run must succeed. The destination each catalogued message
must reach is written down here, from what it is, not read back from the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from flightpipe import source
from flightpipe.contract.events import flight_key
from flightpipe.ingest.consume import consume_member, snapshot
from flightpipe.ingest.topics import dlq_topic, ensure_topics
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.warehouse.db import scratch_database
from flightpipe.warehouse.load import load

try:
    from .warehouse_fixtures import private_kafka
except ImportError:
    from warehouse_fixtures import private_kafka

pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]

DAY = ReplaySlice(date(2013, 1, 1), 1)


@dataclass
class Sent:
    label: str
    topic: str  # logical name
    key: bytes | None
    value: bytes | None
    expect: str  # "dw", "dlq" or "rejected"
    reason: str | None = None  # expected rejection reason (prefix), when it is one rule
    partition: int = -1
    offset: int = -1


@pytest.fixture(scope="module")
def pipe(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with scratch_database(stack, "flightpipe_test") as scratch, private_kafka(scratch) as p:
        settings = p.model_copy(update={"data_dir": tmp_path_factory.mktemp("poison")})
        ensure_topics(settings)
        yield settings


def _flight_dicts(n: int) -> list[dict[str, Any]]:
    events = source.flight_events(DAY, origin="JFK")[:n]
    return [json.loads(_encode(e)) for e in events]


def _encode(event: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(event)


def _key(d: dict[str, Any]) -> bytes:
    return flight_key(
        d["year"], d["month"], d["day"], d["carrier"], d["flight"], d["origin"]
    ).encode()


def _flight(label: str, d: dict[str, Any], expect: str, reason: str | None = None) -> Sent:
    return Sent(label, "flights", _key(d), json.dumps(d).encode(), expect, reason)


def _catalogue() -> list[Sent]:
    good = _flight_dicts(40)
    base = iter(good[10:])

    def variant(**changes: Any) -> dict[str, Any]:
        d = dict(next(base))
        d.update(changes)
        return d

    out = [_flight(f"good {i}", d, "dw") for i, d in enumerate(good[:10])]
    out += [
        _flight("dep_delay overflows every integer", variant(dep_delay=10**20), "dlq"),
        _flight("dep_delay one past smallint", variant(dep_delay=32768), "dlq"),
        _flight(
            "dep_delay at smallint max", variant(dep_delay=32767), "rejected",
            "flight.dep_delay_min_in_range",
        ),
        _flight(
            "implausible delays", variant(dep_delay=2000, arr_delay=1990), "rejected",
            "flight.dep_delay_min_in_range",
        ),
        _flight("NUL in tailnum", variant(tailnum="N1\x0023"), "dlq"),
        _flight("newline after carrier", variant(carrier="B6\n"), "dlq"),
        _flight("100 KB tailnum", variant(tailnum="N" * 100_000), "dlq"),
        _flight(
            "unknown destination", variant(dest="QZQZ"), "rejected", "flight.sched_arrival_known"
        ),
        _flight("wrong type", variant(distance="far"), "dlq"),
        _flight("extra field", variant(surprise={"nested": [1, 2]}), "dw"),
        _flight(
            "departure off its hour", variant(time_hour="2013-01-01T10:30:00Z"), "rejected"
        ),
        _flight(
            "arrives before it leaves", variant(dep_delay=600, arr_delay=-200), "rejected",
            "flight.arrival_after_departure",
        ),
    ]  # fmt: skip
    missing = variant()
    del missing["distance"]
    out.append(_flight("missing field", missing, "dlq"))
    nan = variant()
    text = json.dumps(nan).replace(f'"air_time": {nan["air_time"]}', '"air_time": NaN')
    assert "NaN" in text
    out.append(Sent("NaN token", "flights", _key(nan), text.encode(), "dlq"))
    huge = variant()
    text = json.dumps(huge).replace(f'"air_time": {huge["air_time"]}', '"air_time": 1e400')
    assert "1e400" in text
    out.append(Sent("number beyond a double", "flights", _key(huge), text.encode(), "dlq"))
    wrong_key = variant()
    out.append(
        Sent("key is not the event's", "flights", b"nope", json.dumps(wrong_key).encode(), "dlq")
    )
    out.append(Sent("tombstone", "flights", b"2013-1-1|B6|1|JFK", None, "dlq"))
    out.append(Sent("not JSON", "flights", b"x", b'{"year": 2013,', "dlq"))
    weather = [json.loads(_encode(e)) for e in source.weather_events(DAY, origin="JFK")[:4]]
    hot, wet, off, fine = weather
    hot["temp"] = 130.0
    wet["humid"] = 1e308
    off["time_hour"] = "2013-01-01T06:15:00Z"
    for label, d, expect in (
        ("130 F", hot, "dw"), ("humidity 1e308", wet, "dw"),
        ("observation off the hour", off, "rejected"), ("good weather", fine, "dw"),
    ):  # fmt: skip
        key = f"{d['origin']}|{d['time_hour']}".encode()
        out.append(Sent(label, "weather", key, json.dumps(d).encode(), expect))
    return out


def _produce(settings: Settings, messages: list[Sent]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})

    def report(msg: Sent) -> Any:
        def on_delivery(err: Any, m: Any) -> None:
            assert err is None, err
            msg.partition, msg.offset = m.partition(), m.offset()

        return on_delivery

    for msg in messages:
        producer.produce(settings.topic(msg.topic), msg.value, msg.key, on_delivery=report(msg))
    assert producer.flush(30) == 0


def _cycle(settings: Settings, messages: list[Sent]) -> None:
    """Produce, consume up to the snapshot, transform and load: one cycle, which must pass."""
    _produce(settings, messages)
    consume_member(settings, until=snapshot(settings), member="poison-0", timeout=180)
    result = load(settings)
    assert result.status in ("succeeded", "nothing to load")


def _destinations(settings: Settings) -> dict[tuple[str, int, int], list[str]]:
    """(full topic, partition, offset) -> every place the pipeline put that message."""
    where: dict[tuple[str, int, int], list[str]] = {}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        for table in ("fact_flight", "fact_weather_hourly"):
            for row in conn.execute(f"SELECT src_topic, src_partition, src_offset FROM dw.{table}"):
                where.setdefault(tuple(row), []).append("dw")
        for row in conn.execute(
            "SELECT topic, kafka_partition, kafka_offset, reason FROM meta.rejected_rows"
        ):
            where.setdefault(tuple(row[:3]), []).append(f"rejected:{row[3]}")
    for topic, partition, offset in _dead_letters(settings):
        where.setdefault((topic, partition, offset), []).append("dlq")
    return where


def _dead_letters(settings: Settings) -> list[tuple[str, int, int]]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "unused",
         "enable.auto.commit": False}
    )  # fmt: skip
    out = []
    try:
        for base in ("flights", "weather"):
            tp = TopicPartition(dlq_topic(settings.topic(base)), 0, 0)
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high == 0:
                continue
            consumer.assign([tp])
            seen = 0
            while seen < high:
                for m in consumer.consume(500, timeout=5):
                    headers = dict(m.headers() or [])
                    out.append(
                        (
                            headers["source_topic"].decode(),
                            int(headers["source_partition"]),
                            int(headers["source_offset"]),
                        )
                    )
                    seen = m.offset() + 1
    finally:
        consumer.close()
    return out


def _checksum(settings: Settings) -> tuple[Any, ...]:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        return tuple(
            conn.execute(
                f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM dw.{t} t"
            ).fetchone()
            for t in ("fact_flight", "fact_weather_hourly", "dim_airport")
        )


def test_catalogue_every_message_ends_in_exactly_one_place(pipe: Settings) -> None:
    messages = _catalogue()
    _cycle(pipe, messages)
    where = _destinations(pipe)
    for msg in messages:
        got = where.get((pipe.topic(msg.topic), msg.partition, msg.offset), [])
        assert len(got) == 1, f"{msg.label}: {got}"
        assert got[0].split(":")[0] == msg.expect, f"{msg.label}: {got}"
        if msg.reason:
            assert got[0] == f"rejected:{msg.reason}", msg.label
    with psycopg.connect(pipe.warehouse_dsn) as conn:
        temps = conn.execute(
            "SELECT temp_f, humid_pct FROM dw.fact_weather_hourly ORDER BY observed_at"
        ).fetchall()
        checks = conn.execute(
            "SELECT count(*) FILTER (WHERE NOT passed), count(*) FROM meta.check_results"
        ).fetchone()
    assert temps[0][0] is None and temps[1][1] is None  # sensor errors: NULL, hour kept
    assert checks is not None and checks[0] == 0 and checks[1] > 0
    # Every event of the good ones is in the warehouse with its source values.
    good = [m for m in messages if m.label.startswith("good ") and m.topic == "flights"]
    with psycopg.connect(pipe.warehouse_dsn) as conn:
        delays = {
            (p, o): d
            for p, o, d in conn.execute(
                "SELECT src_partition, src_offset, dep_delay_min FROM dw.fact_flight"
                " WHERE src_topic = %s",
                [pipe.topic("flights")],
            ).fetchall()
        }
    for m in good:
        assert delays[(m.partition, m.offset)] == json.loads(m.value or b"{}")["dep_delay"]

    # The report counts the rejects per topic and reason.
    from flightpipe.analytics.report import collect

    with psycopg.connect(pipe.warehouse_dsn) as conn:
        rejects = collect(conn)["rejects"]
    per_topic: dict[str, int] = {}
    for r in rejects:
        per_topic[r["topic"]] = per_topic.get(r["topic"], 0) + r["rows"]
    expected = {pipe.topic(t): sum(m.expect == "rejected" for m in messages if m.topic == t)
                for t in ("flights", "weather")}  # fmt: skip
    assert per_topic == expected

    # A second cycle with nothing new, and a forced reload, change nothing.
    before = _checksum(pipe)
    _cycle(pipe, [])
    assert load(pipe, force=True).rows_changed == 0
    assert _checksum(pipe) == before


# --- generated input -----------------------------------------------------------------------

_FIELDS = [
    "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
    "sched_arr_time", "arr_delay", "carrier", "tailnum", "origin", "dest", "air_time",
    "distance", "hour", "minute", "time_hour", "event_time", "producer", "schema_version",
]  # fmt: skip
_BOUNDS = [-(2**63), -(2**31), -(2**15) - 1, -(2**15), -1, 0, 1, 59, 60, 2359, 2400, 2401,
           2**15 - 1, 2**15, 2**31, 2**63, 10**30]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(_BOUNDS),
    st.sampled_from(_BOUNDS).map(lambda b: b + 0.5),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=5),
    st.sampled_from(["", "ZZZ", "QZQZ", "N" * 5000, "2013-13-45T00:00:00Z", "2013-01-01T10:00:00"]),
    st.none(),
    st.booleans(),
    st.just([1, 2]),
)
_FLIGHT_BASE = 9000  # flight numbers of generated events: unique, so no two share a key


@st.composite
def _mutations(draw: st.DrawFn) -> list[tuple[str, Any, bool]]:
    n = draw(st.integers(min_value=1, max_value=12))
    return [
        (draw(st.sampled_from([*_FIELDS, "flight", "<missing>", "<extra>"])), draw(_VALUES),
         draw(st.booleans()))
        for _ in range(n)
    ]  # fmt: skip


@hsettings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=_mutations())
def test_generated_events_never_stop_a_run(pipe: Settings, mutations: list[Any]) -> None:
    base = _flight_dicts(1)[0]
    start = _FLIGHT_BASE + _next_block(pipe)
    messages = []
    for i, (field, value, rekey) in enumerate(mutations):
        d = dict(base, flight=start + i)
        if field == "<missing>":
            d.pop(str(value) if str(value) in d else "dest")
        elif field == "<extra>":
            d["extra"] = value
        elif field == "flight":
            # Never a valid flight number, so it cannot collide with a sibling's key.
            d["flight"] = -abs(value) - 1 if isinstance(value, int) else value
        else:
            d[field] = value
        text = json.dumps(d, allow_nan=True).encode()
        try:
            key = _key(d) if rekey else f"2013-1-1|B6|{start + i}|JFK".encode()
        except (KeyError, TypeError):
            key = b"unkeyable"
        messages.append(Sent(f"generated {i}", "flights", key, text, "any"))
    _cycle(pipe, messages)
    where = _destinations(pipe)
    for msg in messages:
        got = where.get((pipe.topic("flights"), msg.partition, msg.offset), [])
        assert len(got) == 1, f"{msg.value!r}: {got}"


def _next_block(settings: Settings) -> int:
    """A fresh block of flight numbers per example (examples share the topics)."""
    marker = Path(settings.data_dir) / "generated-block"
    n = int(marker.read_text()) + 1 if marker.exists() else 0
    marker.write_text(str(n))
    return 100 * n


def test_a_dead_letter_fixed_and_replayed_lands(pipe: Settings) -> None:
    from flightpipe.ingest.dlq import dead_letters, replay

    event = dict(_flight_dicts(60)[-1], flight=8765)
    poison = _flight("to fix", dict(event, dep_delay=40_000), "dlq")
    _cycle(pipe, [poison])
    letters = [
        d
        for d in dead_letters(pipe, "flights")
        if (d.source_partition, d.source_offset) == (poison.partition, poison.offset)
    ]
    assert len(letters) == 1 and letters[0].reason.startswith("schema:")
    assert letters[0].value == poison.value
    ((partition, offset),) = replay(pipe, letters, json.dumps(dict(event, dep_delay=7)).encode())
    consume_member(pipe, until=snapshot(pipe), member="poison-0", timeout=180)
    assert load(pipe).status == "succeeded"
    with psycopg.connect(pipe.warehouse_dsn) as conn:
        row = conn.execute(
            "SELECT dep_delay_min FROM dw.fact_flight"
            " WHERE src_topic = %s AND src_partition = %s AND src_offset = %s",
            [pipe.topic("flights"), partition, offset],
        ).fetchone()
    assert row == (7,)
