"""Raw limits, measured in the same run as the pipeline they bound.

* Kafka's own ProducerPerformance and ConsumerPerformance (Java, same jars as the broker);
* a raw binary COPY of the final fact rows into empty, constraint-free tables.

The transform's anchor, the same cleaning in DuckDB, is in ``bench/anchor.py``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from confluent_kafka.admin import NewTopic
from psycopg import sql

from flightpipe import source
from flightpipe.ingest import kafka_clients
from flightpipe.settings import Settings
from flightpipe.stack.kafka import tool_command
from flightpipe.waiting import wait_until

FACTS = ("fact_flight", "fact_weather_hourly")
_PERF_COLUMNS = (
    "start.time", "end.time", "data.consumed.in.MB", "MB.sec", "data.consumed.in.nMsg",
    "nMsg.sec", "rebalance.time.ms", "fetch.time.ms", "fetch.MB.sec", "fetch.nMsg.sec",
)  # fmt: skip
_PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


# --- Kafka ---------------------------------------------------------------------------------------


def flights_payload(path: Path) -> tuple[int, float]:
    """Write every flights event of 2013 as sent on the wire, one per line.

    ProducerPerformance then sends real records (so lz4 sees real JSON, not random letters)
    with the same count and, on average, the same size. Returns (count, mean bytes).
    """
    encode = msgspec.json.Encoder().encode
    events = source.flight_events(None, None, "bench-perf")
    sizes = 0
    with path.open("wb") as fh:
        for event in events:
            value = encode(event)
            sizes += len(value)
            fh.write(value + b"\n")
    return len(events), sizes / len(events)


def _create_topic(settings: Settings, name: str, partitions: int) -> None:
    client = kafka_clients.admin(settings)
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], operation_timeout=30
    )
    for future in futures.values():
        future.result()

    def ready() -> bool:
        meta = client.list_topics(name, timeout=10).topics.get(name)
        return bool(
            meta and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values())
        )

    wait_until(ready, what=f"topic {name} to have leaders", timeout=30, interval=0.2)


def delete_topic(settings: Settings, name: str) -> None:
    client = kafka_clients.admin(settings)
    if name in client.list_topics(timeout=10).topics:
        for future in client.delete_topics([name], operation_timeout=30).values():
            future.result()


def producer_performance(settings: Settings, topic: str) -> dict[str, Any]:
    """ProducerPerformance with the flights events' count and sizes, acks=all, lz4,
    idempotence, and the pipeline producers' batching (linger 50 ms, 1 MB batches), into a
    fresh topic with the flights topic's partition count."""
    _create_topic(settings, topic, settings.flights_partitions)
    with tempfile.TemporaryDirectory(prefix="flightpipe-perf-") as tmp:
        payload = Path(tmp) / "flights.jsonl"
        count, mean_size = flights_payload(payload)
        props = [
            f"bootstrap.servers={settings.kafka_bootstrap}",
            "acks=all",
            "compression.type=lz4",
            "enable.idempotence=true",
            "linger.ms=50",
            "batch.size=1000000",
            "buffer.memory=268435456",
        ]
        command = tool_command(
            settings,
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic", topic,
            "--num-records", str(count),
            "--throughput", "-1",
            "--payload-file", str(payload),
            "--producer-props", *props,
        )  # fmt: skip
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - started
    matches = _PERF_LINE.findall(out.stdout)
    if out.returncode != 0 or not matches:
        raise RuntimeError(f"ProducerPerformance failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    sent, rate, mb_s = matches[-1]
    return {
        "records": int(sent),
        "mean_record_bytes": round(mean_size, 1),
        "records_per_second": round(float(rate)),
        "mb_per_second": float(mb_s),
        "seconds": round(int(sent) / float(rate), 3),
        "wall_seconds_with_jvm_start": round(wall, 3),
    }


def consumer_performance(settings: Settings, topic: str, records: int) -> dict[str, Any]:
    """ConsumerPerformance over the pipeline's own flights topic (same records, same
    compressed batches), fresh group; ``nMsg.sec`` includes its group join, as our stage does.
    """
    command = tool_command(
        settings,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server", settings.kafka_bootstrap,
        "--topic", topic,
        "--num-records", str(records),
        "--group", f"bench-perf-{uuid.uuid4().hex[:8]}",
        "--timeout", "30000",
        "--command-property", "auto.offset.reset=earliest",
    )  # fmt: skip
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started
    # The CSV header may be separated from its data line by warnings; the data line is the
    # one with the ten fields of _PERF_COLUMNS.
    data = [
        [v.strip() for v in line.split(",")]
        for line in out.stdout.splitlines()
        if line.count(",") == len(_PERF_COLUMNS) - 1 and line[:1].isdigit()
    ]
    if out.returncode != 0 or not data:
        raise RuntimeError(f"ConsumerPerformance failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    values = dict(zip(_PERF_COLUMNS, data[-1], strict=True))
    consumed = int(values["data.consumed.in.nMsg"])
    rate = float(values["nMsg.sec"])
    return {
        "records": consumed,
        "records_per_second": round(rate),
        "fetch_records_per_second": round(float(values["fetch.nMsg.sec"])),
        "rebalance_ms": int(values["rebalance.time.ms"]),
        "seconds": round(consumed / rate, 3) if rate else None,
        "wall_seconds_with_jvm_start": round(wall, 3),
    }


# --- PostgreSQL ----------------------------------------------------------------------------------


def raw_copy(settings: Settings) -> dict[str, Any]:
    """Binary COPY of the final fact rows (taken from the loaded warehouse, held in memory)
    into empty tables without constraints or indexes: the floor for any load."""
    payloads: dict[str, bytes] = {}
    rows = 0
    with psycopg.connect(settings.warehouse_dsn) as conn, conn.cursor() as cur:
        for table in FACTS:
            buf = bytearray()
            with cur.copy(
                sql.SQL("COPY dw.{} TO STDOUT (FORMAT BINARY)").format(sql.Identifier(table))
            ) as copy:
                for chunk in copy:
                    buf += chunk
            payloads[table] = bytes(buf)
            cur.execute(sql.SQL("SELECT count(*) FROM dw.{}").format(sql.Identifier(table)))
            row = cur.fetchone()
            rows += int(row[0]) if row else 0
            cur.execute(
                sql.SQL("CREATE TABLE public.{} (LIKE dw.{})").format(
                    sql.Identifier(f"raw_{table}"), sql.Identifier(table)
                )
            )
        conn.commit()
        started = time.perf_counter()
        for table, data in payloads.items():
            with cur.copy(
                sql.SQL("COPY public.{} FROM STDIN (FORMAT BINARY)").format(
                    sql.Identifier(f"raw_{table}")
                )
            ) as copy:
                copy.write(data)
        conn.commit()
        seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "bytes": sum(len(p) for p in payloads.values()),
        "seconds": round(seconds, 3),
    }
