"""Shared harness pieces: progress output, stage timing with peak memory, throwaway
pipelines.

Every benchmark runs against the shared services (Kafka, PostgreSQL, Dask) but in its own
names: topic prefix, consumer group, data folder and database are unique per pipeline, and
removed again in ``finally`` even when a stage fails.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import psycopg

from flightpipe.ingest.topics import delete_topics, ensure_topics
from flightpipe.settings import Settings
from flightpipe.stack.kafka import libs_dir
from flightpipe.stack.supervisor import process_memory
from flightpipe.warehouse.db import scratch_database

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
_T0 = time.monotonic()


def noisy(load: Sequence[float]) -> bool:
    """A run is noisy when the 1-minute load average (``load[0]``, as from ``os.getloadavg``)
    at its start exceeds the core count: other work then shares the cores it measures."""
    return load[0] > (os.cpu_count() or 1)


def settle(limit: float = 90.0) -> float:
    """Wait (at most ``limit`` seconds) until the 1-minute load average is back within the
    core count, so that a run does not start on the tail of the one before (its raw limits
    push the load average over two for half a minute); returns the seconds waited."""
    started = time.monotonic()
    while noisy(os.getloadavg()) and time.monotonic() - started < limit:
        time.sleep(2.0)
    return time.monotonic() - started


def say(message: str) -> None:
    """Progress line on stdout, stamped with the seconds since the harness started."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


# --- timing and memory ------------------------------------------------------------------------


class _MemorySampler(threading.Thread):
    """Samples the memory (PSS: the producers and members are forked from this process and
    share its pages) of this process plus all its descendants; the Dask workers, the broker
    and PostgreSQL are separate services and not counted. Once a second: reading a process's
    PSS walks its page tables, and ten times a second that took a core from what is timed."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()
        self._me = psutil.Process()

    def sample(self) -> None:
        total = 0
        try:
            procs = [self._me, *self._me.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                total += process_memory(proc)
            except psutil.Error:
                continue  # a child that just exited
        self.peak = max(self.peak, total)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.sample()
        return self.peak


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            **self.detail,
        }


@contextmanager
def stage(name: str) -> Iterator[Stage]:
    """Time a block and record the peak memory (this process + children) while it ran."""
    result = Stage(name)
    sampler = _MemorySampler()
    sampler.start()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        result.peak_memory_mb = sampler.stop() / 2**20


@contextmanager
def children_log(path: Path) -> Iterator[None]:
    """Send stderr (ours and that of every child started meanwhile) to ``path``.

    Producer and consumer processes log progress at INFO on the inherited stderr; it would
    drown the harness' own progress lines, and it is still there to read after a failure.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("a", encoding="utf-8") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


# --- throwaway pipelines ----------------------------------------------------------------------


@contextmanager
def isolated(base: Settings, label: str) -> Iterator[Settings]:
    """A private pipeline on the shared services: own topics (prefix), consumer group,
    data folder and migrated database; all removed on exit.

    The names are passed as explicit Settings fields, so the producer and consumer child
    processes (which rebuild Settings from FLIGHTPIPE_* variables) use them too.
    """
    token = uuid.uuid4().hex[:8]
    data_dir = Path(tempfile.mkdtemp(prefix=f"flightpipe-bench-{label}-"))
    settings: Settings | None = None
    try:
        with scratch_database(base, "flightpipe_bench") as scratch:
            settings = Settings(
                database_url=scratch.warehouse_dsn,
                topic_prefix=f"bench{token}-",
                consumer_group=f"flightpipe-bench-{token}",
                data_dir=data_dir,
                dask_scheduler=base.dask_address,
                kafka_bootstrap=base.kafka_bootstrap,
            )
            # Topics exist in steady state; creating them is setup, not pipeline time.
            ensure_topics(settings)
            yield settings
    finally:
        if settings is not None:
            try:
                delete_topics(settings)
            except Exception as exc:  # cleanup must not hide the real error
                say(f"warning: could not delete topics {settings.topic_prefix}*: {exc}")
        shutil.rmtree(data_dir, ignore_errors=True)


# --- machine facts ------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _kafka_version(settings: Settings) -> str:
    for jar in sorted(libs_dir(settings).glob("kafka-clients-*.jar")):
        return jar.stem.removeprefix("kafka-clients-")
    return "-"


def _postgres_version(settings: Settings) -> str:
    try:
        with psycopg.connect(settings.warehouse_dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "-"
    except psycopg.Error:
        return "-"


def machine_facts(settings: Settings) -> dict[str, Any]:
    import confluent_kafka

    load1, load5, load15 = os.getloadavg()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(terse=True),
        "cpu": platform.processor() or platform.machine(),
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "versions": {
            "python": platform.python_version(),
            "kafka": _kafka_version(settings),
            "librdkafka": confluent_kafka.libversion()[0],
            "confluent-kafka": confluent_kafka.version()[0],
            "postgresql": _postgres_version(settings),
            "psycopg": _version("psycopg"),
            "dask": _version("dask"),
            "distributed": _version("distributed"),
            "pandas": _version("pandas"),
            "pyarrow": _version("pyarrow"),
            "msgspec": _version("msgspec"),
            "apache-airflow": _version("apache-airflow"),
        },
    }
