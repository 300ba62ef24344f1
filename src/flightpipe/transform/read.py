"""Reading landed Parquet files by URL, on whichever host runs the task.

Runs on the Dask workers: each task is handed the URLs and the storage options, so a
worker needs flightpipe and s3fs installed but none of the settings, and never a path on a
disk it would have to share with the host that listed the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem


def parquet_file(url: str | Path, storage_options: Mapping[str, Any] | None) -> pq.ParquetFile:
    """One Parquet file: memory-mapped when local, fetched in one GET from an object store
    (landed files are a few MB; one request beats many ranged reads)."""
    fs, path = fsspec.core.url_to_fs(str(url), **dict(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        return pq.ParquetFile(path)
    return pq.ParquetFile(pa.BufferReader(fs.cat_file(path)))


def read_columns(
    urls: Sequence[str | Path],
    columns: Sequence[str],
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The files as one frame with exactly ``columns``; a column a file lacks (an older
    event version) is NA."""
    tables = []
    for url in urls:
        parquet = parquet_file(url, storage_options)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        tables.append(parquet.read(columns=present))
    frame = (
        pa.concat_tables(tables, promote_options="permissive").to_pandas()
        if tables
        else pd.DataFrame()
    )
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype="object")
    return frame[list(columns)].reset_index(drop=True)
