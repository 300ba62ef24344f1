"""Clean zone: the Dask transform's output, one folder per batch, waiting for the load.

Layout: ``<data_dir>/clean/batch-<key>/`` holding ``<topic>.staged.parquet`` and
``<topic>.rejected.parquet`` per topic, and ``manifest.json`` (the landing files the batch
covers, their row counts, the transform's counts). A batch appears atomically (written in a
hidden folder, fsynced, renamed), so a listed batch is complete. The load removes a batch
once it committed it; a batch whose landing files are all recorded as loaded is spent.
Keys sort by creation, so batches load in the order they were made.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd

from flightpipe.settings import Settings
from flightpipe.transform.graph import TopicOutput, TransformResult
from flightpipe.zones.landing import LandedFile, fsync_path

PREFIX: Final = "batch-"
MANIFEST: Final = "manifest.json"


@dataclass(frozen=True)
class CleanBatch:
    key: str
    path: Path
    forced: bool
    files: list[LandedFile]
    transform_seconds: float
    # topic -> landed, duplicates and the files it was read from, as the manifest says.
    topics: dict[str, Any]

    @property
    def rels(self) -> set[str]:
        return {f.rel for f in self.files}


def clean_dir(settings: Settings) -> Path:
    return settings.data_dir / "clean"


def write_batch(settings: Settings, result: TransformResult, *, forced: bool) -> CleanBatch:
    """Publish ``result`` as a new batch: write, fsync, then make it visible by a rename."""
    root = clean_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    key = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    tmp = root / f".{PREFIX}{key}.tmp"
    tmp.mkdir()
    topics: dict[str, Any] = {}
    for topic, out in result.topics.items():
        out.staged.to_parquet(tmp / f"{topic}.staged.parquet", index=False)
        out.rejected.to_parquet(tmp / f"{topic}.rejected.parquet", index=False)
        topics[topic] = {
            "landed": out.landed,
            "duplicates": out.duplicates,
            "files": [f.rel for f in out.files],
        }
    manifest = {
        "forced": forced,
        "transform_seconds": round(result.seconds, 3),
        "files": [{**asdict(f), "path": str(f.path)} for f in result.files],
        "topics": topics,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    for entry in tmp.iterdir():
        fsync_path(entry)
    fsync_path(tmp)
    target = root / f"{PREFIX}{key}"
    os.replace(tmp, target)
    fsync_path(root)
    return _batch(target, manifest)


def _batch(path: Path, manifest: dict[str, Any]) -> CleanBatch:
    files = [LandedFile(**{**f, "path": Path(f["path"])}) for f in manifest["files"]]
    return CleanBatch(
        path.name.removeprefix(PREFIX),
        path,
        bool(manifest["forced"]),
        files,
        float(manifest["transform_seconds"]),
        manifest["topics"],
    )


def pending_batches(settings: Settings) -> list[CleanBatch]:
    """Published batches not removed yet, oldest first."""
    root = clean_dir(settings)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.glob(f"{PREFIX}*")):
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        out.append(_batch(path, manifest))
    return out


def read_batch(batch: CleanBatch) -> TransformResult:
    """The transform's result as it was published."""
    by_rel = {f.rel: f for f in batch.files}
    result = TransformResult(seconds=batch.transform_seconds)
    for topic, meta in batch.topics.items():
        files = [by_rel[rel] for rel in meta["files"]]
        result.topics[topic] = TopicOutput(
            staged=pd.read_parquet(batch.path / f"{topic}.staged.parquet"),
            rejected=pd.read_parquet(batch.path / f"{topic}.rejected.parquet"),
            landed=int(meta["landed"]),
            duplicates=int(meta["duplicates"]),
            files=files,
        )
        result.file_rows.update({f.rel: f.rows for f in files})
    return result


def remove_batch(batch: CleanBatch) -> None:
    shutil.rmtree(batch.path, ignore_errors=True)
