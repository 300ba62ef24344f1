"""Binary COPY: what encode writes, decode_fixed reads back; a NULL or a foreign layout is
refused, never misread."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flightpipe.warehouse import binary_copy

COLUMNS = (("key", ">i8"), ("score", ">f8"), ("label", ">i2"))
TYPES = ("bigint", "double precision", "smallint")


def _encoded(values: dict[str, np.ndarray]) -> bytes:
    return b"".join(binary_copy.encode(pa.table(values), TYPES))


def test_round_trip() -> None:
    values = {
        "key": np.array([3, -(2**62), 7]),
        "score": np.array([0.25, np.nan, -1e300]),
        "label": np.array([1, 0, -1], dtype=np.int16),
    }
    data = _encoded(values)
    # A field count, then length and value per field: what PostgreSQL reads and writes.
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and data.endswith(b"\xff\xff")
    assert len(data) == 19 + 3 * (2 + 3 * 4 + 8 + 8 + 2) + 2
    rows = binary_copy.decode_fixed(data, COLUMNS)
    for name, want in values.items():
        np.testing.assert_array_equal(rows[name], want)
    empty = binary_copy.HEADER + binary_copy.TRAILER
    assert len(binary_copy.decode_fixed(empty, COLUMNS)) == 0


def test_nulls_and_foreign_layouts_are_refused() -> None:
    one = {"key": np.array([1]), "score": np.array([0.5]), "label": np.array([0], np.int16)}
    data = bytearray(_encoded(one))
    with pytest.raises(ValueError, match="layout"):
        binary_copy.decode_fixed(bytes(data[1:]), COLUMNS)
    with pytest.raises(ValueError, match="layout"):
        binary_copy.decode_fixed(bytes(data), COLUMNS[:2])
    # The score's length set to -1 (NULL), its 8 bytes still there.
    at = 19 + 2 + 4 + 8
    data[at : at + 4] = (-1).to_bytes(4, "big", signed=True)
    with pytest.raises(ValueError, match="NULL"):
        binary_copy.decode_fixed(bytes(data), COLUMNS)
    # A real NULL from the encoder is shorter: the layout no longer fits.
    with_null = _encoded({"key": np.array([1]), "score": pa.array([None], pa.float64()),
                          "label": np.array([0], np.int16)})  # fmt: skip
    with pytest.raises(ValueError):
        binary_copy.decode_fixed(with_null, COLUMNS)
