"""The real pipeline without Airflow, stage by stage, in an isolated pipeline.

produce (parallel producer processes) -> snapshot + consume (the consumer group, one process
per member, into Parquet landing) -> transform (Dask) + load (COPY + upserts + checks) into
the throwaway warehouse. Exactly the functions the Airflow tasks call, minus the scheduler.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from bench.common import say, stage
from flightpipe.ingest.consume import consume_group, snapshot
from flightpipe.ingest.produce import produce_all
from flightpipe.settings import Settings
from flightpipe.source import ReplaySlice
from flightpipe.warehouse.load import load

# Scaling points: months of 2013 replayed from January 1st (None = the whole year, as the
# `whole_year` ingest does).
SPANS: dict[str, ReplaySlice | None] = {
    "1 month": ReplaySlice(date(2013, 1, 1), 31),
    "3 months": ReplaySlice(date(2013, 1, 1), 90),
    "12 months": None,
}


def run_pipeline(settings: Settings, replay: ReplaySlice | None, label: str) -> dict[str, Any]:
    """Run the three stages once; returns timings, counts and peak RSS per stage."""
    started = time.perf_counter()
    with stage("produce") as produce_stage:
        produced = produce_all(replay, settings=settings)
    events = sum(r.produced for r in produced)
    produce_stage.detail = {
        "events": events,
        "flights": sum(r.produced for r in produced if r.role.startswith("flights-")),
        # Time inside send() of the slowest producer: what is left once the child process
        # has started and built its events.
        "send_seconds_max": max(r.seconds for r in produced),
    }
    say(f"  {label}: produced {events:,} events in {produce_stage.seconds:.2f} s")

    with stage("consume") as consume_stage:
        until = snapshot(settings)
        members = consume_group(settings, until=until, timeout=600)
    landed = sum(m.landed for m in members)
    consume_stage.detail = {
        "landed": landed,
        "dlq": sum(m.dlq for m in members),
        "files": sum(m.files for m in members),
        "members": len(members),
    }
    say(f"  {label}: landed {landed:,} rows in {consume_stage.seconds:.2f} s")
    if landed != events:
        raise RuntimeError(f"{label}: produced {events} events but landed {landed}")

    with stage("transform_load") as tl_stage:
        result = load(settings)
    if result.status != "succeeded":
        raise RuntimeError(f"{label}: load {result.status}")
    timings = {k: round(v, 3) for k, v in result.timings.items()}
    tl_stage.detail = {"rows_loaded": result.rows_loaded, "timings": timings}
    wall = time.perf_counter() - started
    say(
        f"  {label}: transform {timings['transform']:.2f} s + load "
        f"{tl_stage.seconds - timings['transform']:.2f} s; {result.rows_loaded:,} rows; "
        f"end to end {wall:.2f} s"
    )
    transform_s = timings["transform"]
    return {
        "label": label,
        "replay": str(replay) if replay else "2013 (whole year)",
        "events": events,
        "wall_seconds": round(wall, 3),
        "events_per_second": round(events / wall),
        "stages": {
            "produce": produce_stage.as_dict(),
            "consume": consume_stage.as_dict(),
            # transform and load share one call (and one peak RSS); split by load()'s timings.
            "transform": {"seconds": transform_s, "peak_rss_mb": round(tl_stage.peak_rss_mb, 1)},
            "load": {
                "seconds": round(tl_stage.seconds - transform_s, 3),
                "peak_rss_mb": round(tl_stage.peak_rss_mb, 1),
                **tl_stage.detail,
            },
        },
    }
