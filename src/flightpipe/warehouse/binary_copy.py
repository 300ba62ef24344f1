"""PostgreSQL's binary COPY format, built and read with numpy, never value by value.

:func:`encode` writes Arrow columns of any supported type; :func:`decode_fixed` reads a COPY
whose columns are all fixed-width and never NULL (what a query can be written to return).

A binary COPY row is a field count, then per field a 4-byte length (-1 for NULL) and the
value in network byte order. Rows differ in size only through NULLs and text lengths, so the
rows are grouped by that *layout* (which columns are NULL, how long each text is): inside a
group every row has the same byte layout, which is one numpy structured dtype, and the group
is written with one vectorised assignment per column. Staging is a set, so the order in which
groups are sent does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, no extension
TRAILER: Final = b"\xff\xff"
# PostgreSQL counts timestamps in microseconds and dates in days from 2000-01-01.
_EPOCH_US: Final = 946_684_800_000_000
_EPOCH_DAYS: Final = 10_957
# Rows encoded at a time, and bytes per COPY message: bounded memory, steady streaming.
ROWS_PER_SLICE: Final = 65_536
CHUNK: Final = 1 << 20

# PostgreSQL type (contract spelling or catalog typname) -> Arrow type, big-endian numpy type.
_FIXED: Final[dict[str, tuple[pa.DataType, str]]] = {
    "smallint": (pa.int16(), ">i2"),
    "int2": (pa.int16(), ">i2"),
    "integer": (pa.int32(), ">i4"),
    "int4": (pa.int32(), ">i4"),
    "bigint": (pa.int64(), ">i8"),
    "int8": (pa.int64(), ">i8"),
    "double precision": (pa.float64(), ">f8"),
    "float8": (pa.float64(), ">f8"),
    "boolean": (pa.bool_(), "u1"),
    "bool": (pa.bool_(), "u1"),
    "timestamp": (pa.timestamp("us"), ">i8"),
    # The same microseconds, counted in UTC: what the wire carries for either type.
    "timestamptz": (pa.timestamp("us", tz="UTC"), ">i8"),
    "date": (pa.date32(), ">i4"),
}
_TEXT: Final = frozenset({"text", "varchar", "character varying"})


def supported(pg_type: str) -> bool:
    return pg_type in _FIXED or pg_type in _TEXT


@dataclass
class _Column:
    null: np.ndarray | None  # bool per row, None when the column has no NULL
    values: np.ndarray | None  # fixed width: the values, big-endian
    text: pa.Array | None  # text: the UTF-8 values, NULLs as empty strings
    lengths: np.ndarray | None  # text: byte length per row


def _column(values: pa.Array, pg_type: str) -> _Column:
    null = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    if pg_type in _TEXT:
        text = values.cast(pa.string()).fill_null("")
        lengths = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
        return _Column(null, None, text, lengths)
    if pg_type not in _FIXED:
        raise TypeError(f"binary COPY does not handle PostgreSQL type {pg_type!r}")
    arrow_type, be = _FIXED[pg_type]
    typed = values.cast(arrow_type)  # safe cast: an out-of-range value fails here, loudly
    if pg_type in ("timestamp", "timestamptz"):
        raw = typed.cast(pa.int64()).fill_null(0).to_numpy() - _EPOCH_US
    elif pg_type == "date":
        raw = typed.cast(pa.int32()).fill_null(0).to_numpy() - _EPOCH_DAYS
    elif arrow_type == pa.bool_():
        raw = typed.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    else:
        raw = typed.fill_null(0).to_numpy(zero_copy_only=False)
    return _Column(null, raw.astype(be, copy=False), None, None)


def _layouts(columns: Sequence[_Column], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct layouts, group of each row): a layout is each column's NULL flag and each
    text's byte length."""
    parts = [c.null.astype(np.int64) for c in columns if c.null is not None]
    parts += [c.lengths for c in columns if c.lengths is not None]
    if not parts:
        return np.zeros((1, 0), np.int64), np.zeros(n, np.intp)
    # One integer per combination, mixed radix; renumbered densely only when the next
    # column could overflow it (a 2-D np.unique would sort row tuples, far slower).
    key = np.zeros(n, np.int64)
    span = 1
    for part in parts:
        radix = int(part.max()) + 1
        if span * radix >= 1 << 62:
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
            span = int(key.max()) + 1
        key = key * radix + part
        span *= radix
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    return np.stack([p[first] for p in parts], axis=1), group.reshape(-1)


def _group_bytes(columns: Sequence[_Column], layout: np.ndarray, rows: np.ndarray) -> bytes:
    """The rows ``rows`` (all of one layout) as binary COPY rows."""
    n_null = sum(c.null is not None for c in columns)
    nulls = iter(layout[:n_null])
    lengths = iter(layout[n_null:])
    fields: list[tuple[str, str]] = [("count", ">i2")]
    assign: list[tuple[str, int | np.ndarray]] = [("count", len(columns))]
    for i, c in enumerate(columns):
        is_null = bool(next(nulls)) if c.null is not None else False
        width = int(next(lengths)) if c.lengths is not None else 0
        fields.append((f"l{i}", ">i4"))
        if is_null:
            assign.append((f"l{i}", -1))
        elif c.values is not None:
            fields.append((f"v{i}", c.values.dtype.str))
            assign += [(f"l{i}", c.values.dtype.itemsize), (f"v{i}", c.values[rows])]
        else:
            assign.append((f"l{i}", width))
            if width:
                assert c.text is not None
                taken = c.text.take(pa.array(rows))
                offsets, data = taken.buffers()[1:3]
                start = int(np.frombuffer(offsets, np.int32, 1)[0])
                fields.append((f"v{i}", f"S{width}"))
                assign.append((f"v{i}", np.frombuffer(data, f"S{width}", len(rows), offset=start)))
    record = np.empty(len(rows), dtype=np.dtype(fields))
    for name, value in assign:
        record[name] = value
    return record.tobytes()


def encode(table: pa.Table, pg_types: Sequence[str]) -> Iterator[bytes]:
    """``table`` (columns in COPY order, one PostgreSQL type each) as binary COPY data, in
    pieces of about :data:`CHUNK` bytes, header and trailer included."""
    pending = [HEADER]
    size = len(HEADER)
    for start in range(0, table.num_rows, ROWS_PER_SLICE):
        part = table.slice(start, ROWS_PER_SLICE)
        columns = [_column(part.column(i).combine_chunks(), t) for i, t in enumerate(pg_types)]
        layouts, group = _layouts(columns, part.num_rows)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(layouts) + 1))
        for g, layout in enumerate(layouts):
            piece = _group_bytes(columns, layout, order[bounds[g] : bounds[g + 1]])
            pending.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
    pending.append(TRAILER)
    yield b"".join(pending)


# (name, big-endian numpy type) per column in COPY order: ">i8" bigint or timestamptz
# (microseconds since 2000-01-01 UTC), ">i4" integer or date (days since 2000-01-01), ">i2"
# smallint, ">f8" double precision.
FixedColumns = Sequence[tuple[str, str]]


def _record(columns: FixedColumns) -> np.dtype:
    """One row: a field count, then a length and a value per column."""
    fields: list[tuple[str, str]] = [("n_fields", ">i2")]
    for name, kind in columns:
        fields += [(f"{name}_bytes", ">i4"), (name, kind)]
    return np.dtype(fields)


def decode_fixed(data: bytes | bytearray, columns: FixedColumns) -> np.ndarray:
    """The rows of a binary COPY of fixed-width, never-NULL columns, as a record array with
    one field per column: every record has the same layout, so numpy reads them in one call.
    Raises ValueError on anything else rather than misread it."""
    record = _record(columns)
    body = len(data) - len(HEADER) - len(TRAILER)
    if not data.startswith(HEADER) or not data.endswith(TRAILER) or body % record.itemsize:
        raise ValueError("the binary COPY does not have the expected layout")
    rows = np.frombuffer(data, dtype=record, offset=len(HEADER), count=body // record.itemsize)
    # A NULL (length -1) or a type other than the declared one would shift every later
    # field; checking the lengths catches both instead of decoding garbage.
    if (rows["n_fields"] != len(columns)).any() or any(
        (rows[f"{name}_bytes"] != np.dtype(kind).itemsize).any() for name, kind in columns
    ):
        raise ValueError("a column of the binary COPY is NULL or not of its declared type")
    return rows
