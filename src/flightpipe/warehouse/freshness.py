"""Freshness: wall-clock seconds from an event's production to the load that made it queryable.

The replay's own clock is 2013, so event times say nothing about delay. Each landed row keeps
its Kafka record timestamp (``_produced_at``: the wall time its producer sent it), and the
load calls :func:`record` as the last step of its transaction: freshness of a row is then
"now" (the database's wall clock, just before COMMIT) minus that timestamp. Per batch and
topic, the median, 95th percentile and maximum go to ``meta.freshness``, in the same
transaction, so a rolled-back load leaves no figure behind.

Forced reloads are not measured: they read files landed long before, and their age is not
how long new data takes. Files landed before the timestamp was kept have none, and are left
out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import psycopg

from flightpipe.contract import TOPICS
from flightpipe.zones.landing import PRODUCED_AT, LandedFile, read_columns

_INSERT: Final = """
INSERT INTO meta.freshness (batch_id, topic, rows, produced_first, produced_last,
                            committed_at, p50_s, p95_s, max_s)
VALUES (%(batch_id)s, %(topic)s, %(rows)s, %(produced_first)s, %(produced_last)s,
        %(committed_at)s, %(p50_s)s, %(p95_s)s, %(max_s)s)
ON CONFLICT (batch_id, topic) DO NOTHING
"""


@dataclass(frozen=True)
class Freshness:
    """Freshness of one topic's rows in one load batch; seconds."""

    topic: str
    rows: int
    produced_first: datetime
    produced_last: datetime
    committed_at: datetime
    p50_s: float
    p95_s: float
    max_s: float


def summarise(topic: str, produced: pd.Series, committed_at: datetime) -> Freshness | None:
    """Percentiles of ``committed_at - produced`` (linear interpolation, as PostgreSQL's
    ``percentile_cont``); None when no row has a production time."""
    stamps = pd.to_datetime(produced, utc=True).dropna()
    if stamps.empty:
        return None
    ages = (pd.Timestamp(committed_at) - stamps).dt.total_seconds().to_numpy()
    p50, p95 = np.percentile(ages, [50, 95])
    return Freshness(
        topic=topic,
        rows=len(stamps),
        produced_first=stamps.min().to_pydatetime(),
        produced_last=stamps.max().to_pydatetime(),
        committed_at=committed_at,
        p50_s=float(p50),
        # Interpolation can put p95 a rounding error above the max: keep the order exact.
        p95_s=float(min(p95, ages.max())),
        max_s=float(ages.max()),
    )


def logical_topic(name: str) -> str:
    """``flights`` for ``<prefix>flights``: a prefix only ever precedes a contract name, and no
    contract name ends another."""
    return next((t for t in TOPICS if name.endswith(t)), name)


def _by_topic(files: Iterable[LandedFile]) -> dict[str, list[LandedFile]]:
    groups: dict[str, list[LandedFile]] = {}
    for f in files:
        groups.setdefault(logical_topic(f.topic), []).append(f)
    return groups


def record(
    cur: psycopg.Cursor[Any],
    batch_id: int,
    files: Sequence[LandedFile],
    storage_options: Mapping[str, Any] | None = None,
) -> list[Freshness]:
    """Measure and store the freshness of batch ``batch_id``'s landed ``files``, inside the
    load's transaction; call it last, right before COMMIT. Returns what was stored.
    ``storage_options`` open the files' URLs (an object-store landing zone)."""
    cur.execute(
        "SELECT forced, clock_timestamp() FROM meta.load_batches WHERE batch_id = %s", [batch_id]
    )
    row = cur.fetchone()
    if row is None or row[0]:
        return []
    committed_at: datetime = row[1]
    stored = []
    for topic, group in sorted(_by_topic(files).items()):
        produced = read_columns([f.path for f in group], [PRODUCED_AT], storage_options)[
            PRODUCED_AT
        ]
        fresh = summarise(topic, produced, committed_at)
        if fresh is None:
            continue
        cur.execute(_INSERT, {"batch_id": batch_id, **fresh.__dict__})
        stored.append(fresh)
    return stored
