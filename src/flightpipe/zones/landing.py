"""Landing zone: one Parquet file per (topic, partition, consumer batch), named by offsets.

The only code that writes or reads landed files: the consumers land batches here, the
transform lists and reads what the group has committed.

Layout: ``<storage base>/landing/<topic>/partition=<p>/<first:012d>-<last:012d>.parquet`` where
``first..last`` is the offset range the batch covered (rows that went to the DLQ leave gaps).

Invariants the consumer keeps and the next stage may rely on:
* a file appears atomically: locally by temp name, fsync, rename, fsync of the directory;
  on an object store by one PUT of the final object (visible only once whole);
* offsets are committed only after the file is durable, so every file whose last offset is
  below the group's committed offset is final and never changes again;
* a batch starting at offset ``first`` first removes any file of its partition ending at or
  after ``first``: those were written by a member that died before committing, and the
  re-delivered batch replaces them. Once the group has committed past an offset, landing
  holds it exactly once (or it is in the DLQ).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flightpipe import storage
from flightpipe.contract.events import Event, field_kinds
from flightpipe.ingest.topics import (
    committed_offsets,
    committed_offsets_of,
    end_offsets,
    full_name,
)
from flightpipe.settings import Settings
from flightpipe.storage import fsync_path
from flightpipe.transform import read

__all__ = [
    "META_COLUMNS",
    "PRODUCED_AT",
    "LandedFile",
    "by_partition",
    "committed_offsets",
    "discover",
    "end_offsets",
    "fsync_path",
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
    """One landed file; ``rel`` (its path relative to the landing zone) is its identity,
    ``path`` its URL (a plain path when the zone is local)."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    path: str
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


def topic_dir(settings: Settings, topic: str) -> str:
    """Landing URL of a topic (named as on the broker, i.e. with the prefix)."""
    return storage.join(storage.zone_url(settings, "landing"), full_name(settings, topic))


def partition_dir(settings: Settings, topic: str, partition: int) -> str:
    return storage.join(topic_dir(settings, topic), f"partition={partition}")


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
    # Column by column: faster than a row tuple per event into a struct array.
    arrays = [_array(list(map(attrgetter(f.name), events)), f.type) for f in fields]
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
) -> str | None:
    """Make ``table`` the durable landing of offsets ``first..last`` of one partition and
    return its URL (a plain path when local).

    ``table`` is None when every message of the range went to the DLQ: nothing is written.
    Nothing else is removed here; leftovers of an earlier owner are cleared when the
    partition is assigned (:func:`clear_uncommitted`), by the committed offset.
    """
    if table is None:
        return None
    fs, folder = storage.filesystem(
        partition_dir(settings, topic, partition), storage.storage_options(settings)
    )
    target = f"{folder}/{file_name(first_offset, last_offset)}"
    sink = pa.BufferOutputStream()
    # lz4: a third less CPU than zstd for the consumers, on files a third larger.
    pq.write_table(table, sink, compression="lz4")
    # Whole or not at all (a rename locally, a single PUT on an object store): only then
    # does the consumer commit the offsets.
    storage.publish_bytes(fs, target, sink.getvalue().to_pybytes())
    return storage.url_of(fs, target)


def clear_uncommitted(settings: Settings, topic: str, partition: int, committed: int) -> int:
    """Remove the files of a partition that reach its ``committed`` offset or beyond, and
    temp files; returns how many. Called by the partition's new owner at assignment.

    Such files were written by an owner that died or lost the partition before committing
    them; the new owner reads those offsets again. Files wholly below the committed offset
    are the group's record and are never touched.
    """
    fs, folder = storage.filesystem(
        partition_dir(settings, topic, partition), storage.storage_options(settings)
    )
    try:
        entries = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return 0
    doomed = []
    for entry in entries:
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        match = _FILE_RE.match(name)
        if name.endswith(".tmp") or (match and int(match.group(2)) >= committed):
            doomed.append(entry)
    for entry in doomed:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(entry)
    if doomed and storage.is_local(fs):
        fsync_path(folder)
    return len(doomed)


def list_landed_files(
    settings: Settings,
    topic: str,
    *,
    only_committed: bool = False,
    exclude: Container[str] = frozenset(),
    committed: Mapping[int, int] | None = None,
) -> list[LandedFile]:
    """Landed files of a topic, by partition and offset.

    ``topic`` is the logical name (``flights``); a name already carrying the topic prefix
    is accepted as well.

    With ``only_committed`` the files the consumer group has not committed yet are left
    out (they may still be replaced); use it when consumers may be running (follow mode).
    Files whose ``rel`` is in ``exclude`` are left out before their footer is read: a live
    zone holds tens of thousands of loaded files, and reading every footer took seconds.
    ``committed``: the group's offsets when the caller has them already.
    """
    options = storage.storage_options(settings)
    fs, root = storage.filesystem(topic_dir(settings, topic), options)
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return []
    if not found:
        return []
    if only_committed and committed is None:
        committed = committed_offsets(settings, topic)
    committed = committed or {}
    topic_name = root.rstrip("/").rsplit("/", 1)[-1]
    files = []
    for entry, info in found.items():
        folder, _, name = entry.rpartition("/")
        match = _FILE_RE.match(name)
        part_dir = folder.rsplit("/", 1)[-1]
        if not match or not part_dir.startswith("partition="):
            continue
        partition = int(part_dir.split("=", 1)[1])
        first, last = int(match.group(1)), int(match.group(2))
        if only_committed and last >= committed.get(partition, -1):
            continue
        rel = f"{topic_name}/{part_dir}/{name}"
        if rel in exclude:
            continue
        try:
            rows = _num_rows(fs, entry)
        except FileNotFoundError:
            continue  # replaced by its partition's new owner while we listed
        url = storage.url_of(fs, entry)
        files.append(LandedFile(topic_name, partition, first, last, url, rows, info["size"], rel))
    return sorted(files)


def _num_rows(fs: Any, path: str) -> int:
    if storage.is_local(fs):
        return int(pq.read_metadata(path).num_rows)
    # The footer only: a ranged read of the object's tail, not the whole file.
    with fs.open(path, "rb", block_size=64 * 1024, cache_type="readahead") as fh:
        return int(pq.read_metadata(fh).num_rows)


def discover(
    settings: Settings,
    topics: Iterable[str],
    *,
    only_committed: bool = True,
    exclude: Container[str] = frozenset(),
) -> dict[str, list[LandedFile]]:
    """Landed files per logical topic name, by partition and offset, without those whose
    ``rel`` is in ``exclude``.

    By default only files the consumer group has committed: those are final, while a file
    past the committed offset may still be replaced by a redelivery.
    """
    topics = list(topics)
    committed = committed_offsets_of(settings, topics) if only_committed else {}
    return {
        t: list_landed_files(
            settings, t, only_committed=only_committed, exclude=exclude, committed=committed.get(t)
        )
        for t in topics
    }


def by_partition(files: Iterable[LandedFile]) -> list[list[LandedFile]]:
    """Files grouped per Kafka partition: all deliveries of a key sit in one partition."""
    groups: dict[int, list[LandedFile]] = {}
    for f in sorted(files):
        groups.setdefault(f.partition, []).append(f)
    return [groups[p] for p in sorted(groups)]


def read_columns(
    paths: Sequence[str | Path],
    columns: Sequence[str],
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Landed files (paths or URLs) as one frame with exactly ``columns``; a column a file
    lacks (an older event version) is NA. ``storage_options`` as from
    :func:`flightpipe.storage.storage_options`."""
    return read.read_columns(paths, columns, storage_options)


def file_rows(files: Iterable[LandedFile]) -> Mapping[str, int]:
    """Rows per file (by ``rel``), as listed."""
    return {f.rel: f.rows for f in files}


def read_landed(
    paths: Iterable[Path | str | LandedFile], storage_options: Mapping[str, Any] | None = None
) -> pa.Table:
    """All rows of the given landed files as one Arrow table (same schema per topic)."""
    tables = [
        read.parquet_file(p.path if isinstance(p, LandedFile) else p, storage_options).read()
        for p in paths
    ]
    if not tables:
        raise ValueError("read_landed needs at least one file")
    return pa.concat_tables(tables)
