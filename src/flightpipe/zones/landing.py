"""Landing zone: one Parquet file per (topic, partition, consumer batch), named by offsets.

The only code that writes or reads landed files: the consumers land batches here, the
transform lists and reads what the group has committed.

Layout: ``<landing_dir>/<topic>/partition=<p>/<first:012d>-<last:012d>.parquet`` where
``first..last`` is the offset range the batch covered (rows that went to the DLQ leave gaps).

Invariants the consumer keeps and the next stage may rely on:
* a file appears atomically (temp name, fsync, rename, fsync of the directory);
* offsets are committed only after the file is durable, so every file whose last offset is
  below the group's committed offset is final and never changes again;
* a batch starting at offset ``first`` first removes any file of its partition ending at or
  after ``first``: those were written by a member that died before committing, and the
  re-delivered batch replaces them. Once the group has committed past an offset, landing
  holds it exactly once (or it is in the DLQ).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flightpipe.contract.events import Event, field_kinds
from flightpipe.ingest.topics import committed_offsets, end_offsets, full_name
from flightpipe.settings import Settings

__all__ = [
    "META_COLUMNS",
    "PRODUCED_AT",
    "LandedFile",
    "by_partition",
    "committed_offsets",
    "discover",
    "end_offsets",
    "landing_schema",
    "list_landed_files",
    "read_columns",
    "read_landed",
]

META_COLUMNS: Final = ("_topic", "_partition", "_offset", "_key", "_produced_at")
# The Kafka record timestamp: the wall time the producer sent the event (CreateTime). The
# replay's event times are 2013, so freshness is measured from this one.
PRODUCED_AT: Final = "_produced_at"
_FILE_RE: Final = re.compile(r"^(\d{12})-(\d{12})\.parquet$")
_ARROW: Final[dict[type, pa.DataType]] = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    datetime: pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True, order=True)
class LandedFile:
    """One landed file; ``rel`` (its path relative to the landing folder) is its identity."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    path: Path
    rows: int
    bytes: int
    rel: str


def landing_schema(tp: type[Event]) -> pa.Schema:
    """Event fields in wire order, then the Kafka lineage columns."""
    fields = [
        pa.field(name, _ARROW[kind], nullable=nullable)
        for name, (kind, nullable) in field_kinds(tp).items()
    ]
    fields += [
        pa.field("_topic", pa.string(), nullable=False),
        pa.field("_partition", pa.int32(), nullable=False),
        pa.field("_offset", pa.int64(), nullable=False),
        pa.field("_key", pa.string(), nullable=False),
        # Null when the broker gave no timestamp (and in files landed before it was kept).
        pa.field(PRODUCED_AT, pa.timestamp("ms", tz="UTC"), nullable=True),
    ]
    return pa.schema(fields)


def topic_dir(settings: Settings, topic: str) -> Path:
    """Landing folder of a topic (named as on the broker, i.e. with the prefix)."""
    return settings.landing_dir / full_name(settings, topic)


def partition_dir(settings: Settings, topic: str, partition: int) -> Path:
    return topic_dir(settings, topic) / f"partition={partition}"


def file_name(first_offset: int, last_offset: int) -> str:
    return f"{first_offset:012d}-{last_offset:012d}.parquet"


def build_table(
    tp: type[Event],
    events: Sequence[Event],
    topic: str,
    partition: int,
    offsets: Sequence[int],
    keys: Sequence[str],
    produced_ms: Sequence[int | None] | None = None,
) -> pa.Table:
    """The landing table of ``events``; ``produced_ms`` are their Kafka record timestamps
    (milliseconds since the epoch, None when the broker gave none)."""
    schema = landing_schema(tp)
    fields = list(schema)[: len(tp.__struct_fields__)]
    # Plain fields in one go: a row tuple per event into a struct array, split into columns.
    plain = [f for f in fields if not pa.types.is_timestamp(f.type)]
    rows = list(map(attrgetter(*(f.name for f in plain)), events)) if len(plain) > 1 else []
    columns: dict[str, pa.Array] = (
        dict(zip([f.name for f in plain], pa.array(rows, pa.struct(plain)).flatten(), strict=True))
        if rows
        else {}
    )
    arrays = [
        columns[f.name]
        if f.name in columns
        else _array(list(map(attrgetter(f.name), events)), f.type)
        for f in fields
    ]
    arrays += [
        pa.array([topic] * len(events), pa.string()),
        pa.array([partition] * len(events), pa.int32()),
        pa.array(offsets, pa.int64()),
        pa.array(keys, pa.string()),
        pa.array([None] * len(events) if produced_ms is None else produced_ms, pa.int64()).cast(
            pa.timestamp("ms", tz="UTC")
        ),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _array(values: Sequence[object], type_: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(type_):
        # Integers: pyarrow would import pandas to convert zone-aware datetimes, and is slower.
        micros = [
            None if v is None else (v - _EPOCH) // _MICROSECOND  # type: ignore[operator]
            for v in values
        ]
        return pa.array(micros, pa.int64()).cast(type_)
    return pa.array(values, type=type_)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def land_batch(
    settings: Settings,
    topic: str,
    partition: int,
    first_offset: int,
    last_offset: int,
    table: pa.Table | None,
) -> Path | None:
    """Make ``table`` the durable landing of offsets ``first..last`` of one partition.

    ``table`` is None when every message of the range went to the DLQ: nothing is written.
    Nothing else is removed here; leftovers of an earlier owner are cleared when the
    partition is assigned (:func:`clear_uncommitted`), by the committed offset.
    """
    if table is None:
        return None
    folder = partition_dir(settings, topic, partition)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name(first_offset, last_offset)
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(folder)
    return target


def clear_uncommitted(settings: Settings, topic: str, partition: int, committed: int) -> int:
    """Remove the files of a partition that reach its ``committed`` offset or beyond, and
    temp files; returns how many. Called by the partition's new owner at assignment.

    Such files were written by an owner that died or lost the partition before committing
    them; the new owner reads those offsets again. Files wholly below the committed offset
    are the group's record and are never touched.
    """
    folder = partition_dir(settings, topic, partition)
    if not folder.exists():
        return 0
    removed = 0
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if entry.name.endswith(".tmp") or (match and int(match.group(2)) >= committed):
            entry.unlink(missing_ok=True)
            removed += 1
    if removed:
        fsync_path(folder)
    return removed


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a rename is durable once its folder is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_landed_files(
    settings: Settings, topic: str, *, only_committed: bool = False
) -> list[LandedFile]:
    """Landed files of a topic, by partition and offset.

    ``topic`` is the logical name (``flights``); a name already carrying the topic prefix
    is accepted as well.

    With ``only_committed`` the files the consumer group has not committed yet are left
    out (they may still be replaced); use it when consumers may be running (follow mode).
    """
    root = topic_dir(settings, topic)
    if not root.exists():
        return []
    committed = committed_offsets(settings, topic) if only_committed else {}
    files = []
    for folder in root.glob("partition=*"):
        partition = int(folder.name.split("=", 1)[1])
        for entry in folder.iterdir():
            match = _FILE_RE.match(entry.name)
            if not match:
                continue
            first, last = int(match.group(1)), int(match.group(2))
            if only_committed and last >= committed.get(partition, -1):
                continue
            try:
                rows = pq.read_metadata(entry).num_rows
                size = entry.stat().st_size
            except FileNotFoundError:
                continue  # replaced by its partition's new owner while we listed
            rel = entry.relative_to(settings.landing_dir).as_posix()
            files.append(LandedFile(root.name, partition, first, last, entry, rows, size, rel))
    return sorted(files)


def discover(
    settings: Settings, topics: Iterable[str], *, only_committed: bool = True
) -> dict[str, list[LandedFile]]:
    """Landed files per logical topic name, by partition and offset.

    By default only files the consumer group has committed: those are final, while a file
    past the committed offset may still be replaced by a redelivery.
    """
    return {t: list_landed_files(settings, t, only_committed=only_committed) for t in topics}


def by_partition(files: Iterable[LandedFile]) -> list[list[LandedFile]]:
    """Files grouped per Kafka partition: all deliveries of a key sit in one partition."""
    groups: dict[int, list[LandedFile]] = {}
    for f in sorted(files):
        groups.setdefault(f.partition, []).append(f)
    return [groups[p] for p in sorted(groups)]


def read_columns(paths: Sequence[str | Path], columns: Sequence[str]) -> pd.DataFrame:
    """Landed files as one frame with exactly ``columns``; a column a file lacks (an older
    event version) is NA."""
    tables = []
    for path in paths:
        present = [c for c in columns if c in pq.read_schema(path).names]
        tables.append(pq.read_table(path, columns=present))
    frame = (
        pa.concat_tables(tables, promote_options="permissive").to_pandas()
        if tables
        else pd.DataFrame()
    )
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype="object")
    return frame[list(columns)].reset_index(drop=True)


def file_rows(files: Iterable[LandedFile]) -> Mapping[str, int]:
    """Rows per file (by ``rel``), as listed."""
    return {f.rel: f.rows for f in files}


def read_landed(paths: Iterable[Path | str | LandedFile]) -> pa.Table:
    """All rows of the given landed files as one Arrow table (same schema per topic)."""
    tables = [pq.read_table(p.path if isinstance(p, LandedFile) else p) for p in paths]
    if not tables:
        raise ValueError("read_landed needs at least one file")
    return pa.concat_tables(tables)
