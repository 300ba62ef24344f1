"""Clean zone: the Dask transform's output, one folder per batch, waiting for the load.

Layout: ``<storage base>/clean/batch-<key>/`` holding ``<topic>.staged.parquet`` and
``<topic>.rejected.parquet`` per topic, and ``manifest.json`` (the landing files the batch
covers, their row counts, the transform's counts). A batch appears atomically, so a listed
batch is complete: locally it is written in a hidden folder, fsynced and renamed; on an
object store its manifest is written last and a folder without one is not listed. The load
removes a batch once it committed it; a batch whose landing files are all recorded as loaded
is spent.
Keys sort by creation, so batches load in the order they were made.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd

from flightpipe import storage
from flightpipe.settings import Settings
from flightpipe.storage import fsync_path
from flightpipe.transform.graph import TopicOutput, TransformResult
from flightpipe.zones.landing import LandedFile

PREFIX: Final = "batch-"
MANIFEST: Final = "manifest.json"


@dataclass(frozen=True)
class CleanBatch:
    key: str
    # URL of the batch folder (a plain path when the zone is local).
    path: str
    forced: bool
    files: list[LandedFile]
    transform_seconds: float
    # topic -> landed, duplicates and the files it was read from, as the manifest says.
    topics: dict[str, Any]
    # How to open ``path`` (storage credentials): kept out of repr and comparisons.
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rels(self) -> set[str]:
        return {f.rel for f in self.files}


def clean_dir(settings: Settings) -> str:
    """URL (or path) of the clean zone."""
    return storage.zone_url(settings, "clean")


def write_batch(settings: Settings, result: TransformResult, *, forced: bool) -> CleanBatch:
    """Publish ``result`` as a new batch: write everything, then make it visible at once."""
    options = storage.storage_options(settings)
    fs, root = storage.filesystem(clean_dir(settings), options)
    key = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    parts: dict[str, bytes] = {}
    topics: dict[str, Any] = {}
    for topic, out in result.topics.items():
        parts[f"{topic}.staged.parquet"] = _parquet_bytes(out.staged)
        parts[f"{topic}.rejected.parquet"] = _parquet_bytes(out.rejected)
        topics[topic] = {
            "landed": out.landed,
            "duplicates": out.duplicates,
            "files": [f.rel for f in out.files],
        }
    manifest = {
        "forced": forced,
        "transform_seconds": round(result.seconds, 3),
        "files": [asdict(f) for f in result.files],
        "topics": topics,
    }
    parts[MANIFEST] = json.dumps(manifest).encode("utf-8")
    target = f"{root}/{PREFIX}{key}"
    if storage.is_local(fs):
        _publish_local(root, target, parts)
    else:
        # No rename on an object store: the data objects first, the manifest last. A batch
        # counts only once its manifest exists, and that single PUT is atomic.
        for name, data in parts.items():
            if name != MANIFEST:
                fs.pipe_file(f"{target}/{name}", data)
        fs.pipe_file(f"{target}/{MANIFEST}", parts[MANIFEST])
    return _batch(storage.url_of(fs, target), manifest, options)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _publish_local(root: str, target: str, parts: dict[str, bytes]) -> None:
    """Written in a hidden folder, fsynced, renamed: a listed batch is complete."""
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, f".{os.path.basename(target)}.tmp")
    os.mkdir(tmp)
    for name, data in parts.items():
        with open(os.path.join(tmp, name), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(root)


def _batch(url: str, manifest: dict[str, Any], options: dict[str, Any]) -> CleanBatch:
    files = [LandedFile(**{**f, "path": str(f["path"])}) for f in manifest["files"]]
    return CleanBatch(
        url.rstrip("/").rsplit("/", 1)[-1].removeprefix(PREFIX),
        url,
        bool(manifest["forced"]),
        files,
        float(manifest["transform_seconds"]),
        manifest["topics"],
        options,
    )


def pending_batches(settings: Settings) -> list[CleanBatch]:
    """Published batches not removed yet, oldest first."""
    options = storage.storage_options(settings)
    fs, root = storage.filesystem(clean_dir(settings), options)
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        return []
    out = []
    for path in sorted(e.rstrip("/") for e in entries):
        if not path.rsplit("/", 1)[-1].startswith(PREFIX):
            continue
        try:
            manifest = json.loads(fs.cat_file(f"{path}/{MANIFEST}"))
        except FileNotFoundError:
            continue  # an object-store batch still being written (or its writer died)
        out.append(_batch(storage.url_of(fs, path), manifest, options))
    return out


def read_batch(batch: CleanBatch) -> TransformResult:
    """The transform's result as it was published."""
    by_rel = {f.rel: f for f in batch.files}
    result = TransformResult(seconds=batch.transform_seconds)
    fs, root = storage.filesystem(batch.path, batch.storage_options)
    for topic, meta in batch.topics.items():
        files = [by_rel[rel] for rel in meta["files"]]
        result.topics[topic] = TopicOutput(
            staged=_read_frame(fs, f"{root}/{topic}.staged.parquet"),
            rejected=_read_frame(fs, f"{root}/{topic}.rejected.parquet"),
            landed=int(meta["landed"]),
            duplicates=int(meta["duplicates"]),
            files=files,
        )
        result.file_rows.update({f.rel: f.rows for f in files})
    return result


def _read_frame(fs: Any, path: str) -> pd.DataFrame:
    if storage.is_local(fs):
        return pd.read_parquet(path)
    return pd.read_parquet(io.BytesIO(fs.cat_file(path)))


def remove_batch(batch: CleanBatch) -> None:
    fs, root = storage.filesystem(batch.path, batch.storage_options)
    if storage.is_local(fs):
        shutil.rmtree(root, ignore_errors=True)
        return
    # The manifest first: a half-removed batch is then no longer listed as pending. One
    # DELETE per object: a multi-object delete needs checksum headers not every store takes.
    manifest = f"{root}/{MANIFEST}"
    for path in [manifest, *(p for p in fs.find(root) if p != manifest)]:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
