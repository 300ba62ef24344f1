"""Discovery of landing files.

Contract of the landing zone (written by the ingest consumers):
``<landing_dir>/<topic>/partition=<p>/<first:012d>-<last:012d>.parquet``, written atomically,
so anything matching the pattern is complete. Files may overlap in offsets (redelivery after
a consumer-group rebalance); the transform dedupes rows, not files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flightpipe.settings import Settings

TOPICS: Final = ("flights", "weather", "airlines", "airports", "planes")
_FILE_RE: Final = re.compile(r"^(?P<first>\d+)-(?P<last>\d+)\.parquet$")
_PARTITION_RE: Final = re.compile(r"^partition=(?P<p>\d+)$")


@dataclass(frozen=True, order=True)
class LandingFile:
    """One landed Parquet file; ``rel`` (relative to the landing dir) is its identity."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    rel: str
    path: Path
    bytes: int

    @classmethod
    def from_path(cls, landing_dir: Path, path: Path) -> LandingFile | None:
        """Parse a path laid out by the contract; None for anything else (temp files...)."""
        m = _FILE_RE.match(path.name)
        p = _PARTITION_RE.match(path.parent.name)
        if not m or not p:
            return None
        try:
            rel = path.relative_to(landing_dir).as_posix()
            size = path.stat().st_size
        except (ValueError, FileNotFoundError):
            return None
        return cls(
            topic=path.parent.parent.name,
            partition=int(p["p"]),
            first_offset=int(m["first"]),
            last_offset=int(m["last"]),
            rel=rel,
            path=path,
            bytes=size,
        )


def _glob_topic(landing_dir: Path, topic_dir: str) -> list[LandingFile]:
    root = landing_dir / topic_dir
    if not root.is_dir():
        return []
    found = (LandingFile.from_path(landing_dir, p) for p in root.glob("partition=*/*.parquet"))
    return sorted(f for f in found if f is not None)


def _from_ingest(settings: Settings, topic: str) -> list[LandingFile] | None:
    """Use the ingest package's own listing when it is there and returns paths we can parse."""
    try:
        from flightpipe.ingest import landing
    except ImportError:
        return None
    lister = getattr(landing, "list_landed_files", None)
    if lister is None:
        return None
    try:
        items: Iterable[Any] = lister(settings, topic)
    except TypeError:
        return None
    files = []
    for item in items:
        raw = getattr(item, "path", item)
        if not isinstance(raw, str | Path):
            return None
        lf = LandingFile.from_path(settings.landing_dir, Path(raw))
        if lf is None:
            return None
        files.append(lf)
    return sorted(files)


def discover(settings: Settings, topics: Iterable[str] = TOPICS) -> dict[str, list[LandingFile]]:
    """Landed files per logical topic name (``flights``...), sorted by partition and offset."""
    out: dict[str, list[LandingFile]] = {}
    for topic in topics:
        files = _from_ingest(settings, topic)
        if files is None:
            files = _glob_topic(settings.landing_dir, settings.topic(topic))
        out[topic] = files
    return out


def by_partition(files: Iterable[LandingFile]) -> list[list[LandingFile]]:
    """Group files per Kafka partition: one Dask partition each, so per-key dedupe is local."""
    groups: dict[int, list[LandingFile]] = {}
    for f in sorted(files):
        groups.setdefault(f.partition, []).append(f)
    return [groups[p] for p in sorted(groups)]


def file_rows(files: Iterable[LandingFile]) -> dict[str, int]:
    """Row count per file (``rel``), from the Parquet footers only."""
    import pyarrow.parquet as pq

    return {f.rel: pq.ParquetFile(f.path).metadata.num_rows for f in files}
