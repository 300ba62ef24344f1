"""Where the zones live: one base URL (a local folder by default, or ``s3://bucket/prefix``
on any S3-compatible store), opened through fsspec.

Every stored thing has a URL under :attr:`Settings.storage_base`: ``<base>/landing``,
``<base>/clean``, ``<base>/models``, ``<base>/reports``. Local paths stay plain paths (no
``file://``), so a local deployment reads and writes exactly what it did before.

Code that runs elsewhere (Dask workers) gets the URL and :func:`storage_options`; it never
needs this process's settings or a shared disk.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from flightpipe.settings import Settings, check_storage_url

Zone = Literal["landing", "clean", "models", "reports"]
ZONES: Final[tuple[Zone, ...]] = ("landing", "clean", "models", "reports")


def scheme(url: str) -> str:
    """``s3`` for ``s3://...``; ``file`` for a plain path or ``file://``."""
    found = urlsplit(url).scheme
    return "file" if len(found) <= 1 else found.lower()


def check_url(url: str) -> str:
    """``url`` if flightpipe can store there, else a one-line ``ValueError``."""
    return check_storage_url(url)


def join(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended by ``/`` (URLs) or the OS separator (paths)."""
    if scheme(base) == "file":
        return os.path.join(local_path(base), *parts)
    return posixpath.join(base.rstrip("/"), *parts)


def local_path(url: str) -> str:
    """The path of a local URL (``file:///x`` -> ``/x``; a path stays as it is)."""
    return url.removeprefix("file://") if url.startswith("file://") else url


def zone_url(settings: Settings, zone: Zone) -> str:
    """Base URL (or path) of one zone."""
    return join(settings.storage_base, zone)


def storage_options(settings: Settings) -> dict[str, Any]:
    """fsspec keyword arguments of the storage base: what a remote reader needs as well."""
    if scheme(settings.storage_base) != "s3":
        return {}
    options: dict[str, Any] = {
        # The zones change under the reader (new landed files, removed batches): a cached
        # listing would hide them.
        "use_listings_cache": False,
        "client_kwargs": {"endpoint_url": settings.s3_endpoint, "region_name": settings.s3_region},
        # Checksums only where the API requires them (botocore's behaviour before 1.36): many
        # S3-compatible stores reject the newer default checksum headers on every PUT.
        "config_kwargs": {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        },
    }
    if settings.s3_access_key:
        options["key"] = settings.s3_access_key
        options["secret"] = settings.s3_secret_key
    return options


def filesystem(url: str, options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it (instances are cached by
    fsspec per set of options)."""
    fs, path = fsspec.core.url_to_fs(check_url(url), **dict(options or {}))
    return fs, path


def zone_fs(settings: Settings, zone: Zone) -> tuple[Any, str]:
    return filesystem(zone_url(settings, zone), storage_options(settings))


def is_local(fs: Any) -> bool:
    return isinstance(fs, LocalFileSystem)


def url_of(fs: Any, path: str) -> str:
    """The URL a path inside ``fs`` is known by elsewhere (plain path when local)."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a directory (a rename is durable once its folder is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_bytes(fs: Any, path: str, data: bytes) -> None:
    """Make ``data`` the object at ``path`` so that a reader sees all of it or nothing.

    Locally: a temp file, fsynced, renamed, then the folder fsynced. On an object store a
    single PUT (or a completed multipart upload) is atomic by itself, so the final name is
    written directly and is visible only once whole.
    """
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_path(folder)


def ensure_base(settings: Settings) -> None:
    """Create the storage base (a folder, or the bucket on a fresh object store)."""
    fs, path = filesystem(settings.storage_base, storage_options(settings))
    if is_local(fs):
        os.makedirs(path, exist_ok=True)
        return
    bucket = path.split("/", 1)[0]
    # From the bucket list: some stores answer a HEAD of a missing bucket as if it existed.
    if bucket not in {b.rstrip("/") for b in fs.ls("", detail=False)}:
        fs.call_s3("create_bucket", Bucket=bucket)
        fs.invalidate_cache()
