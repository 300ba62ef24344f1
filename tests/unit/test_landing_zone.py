"""The landing zone's ownership rules, on files only (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from flightpipe.settings import Settings
from flightpipe.zones.landing import clear_uncommitted, file_name, land_batch, partition_dir


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _names(settings: Settings) -> list[str]:
    return sorted(p.name for p in Path(partition_dir(settings, "flights", 0)).iterdir())


def test_landing_writes_its_range_and_touches_nothing_else(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    table = pa.table({"x": [1, 2]})
    land_batch(settings, "flights", 0, 0, 99, table)
    # A later batch of another owner over overlapping offsets must not delete the first
    # file: which of them counts is decided by the committed offset, at assignment.
    land_batch(settings, "flights", 0, 50, 149, table)
    assert _names(settings) == [file_name(0, 99), file_name(50, 149)]
    assert land_batch(settings, "flights", 0, 150, 160, None) is None  # all dead letters
    assert _names(settings) == [file_name(0, 99), file_name(50, 149)]


def test_assignment_clears_what_reaches_the_committed_offset(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    table = pa.table({"x": [1]})
    for first, last in [(0, 99), (100, 199), (200, 299), (150, 250)]:
        land_batch(settings, "flights", 0, first, last, table)
    folder = Path(partition_dir(settings, "flights", 0))
    (folder / ".000000000300-000000000399.parquet.4242.tmp").write_bytes(b"half")

    removed = clear_uncommitted(settings, "flights", 0, committed=200)

    # Committed up to 199: the files wholly below stay; the rest is re-read by the owner.
    assert _names(settings) == [file_name(0, 99), file_name(100, 199)]
    assert removed == 3
    assert clear_uncommitted(settings, "flights", 0, committed=200) == 0
    assert clear_uncommitted(settings, "flights", 7, committed=0) == 0  # no folder yet
