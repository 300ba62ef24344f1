"""The real pipeline without Airflow, stage by stage, in an isolated pipeline.

ingest (``pipeline.ingest``: the five producers and the consumer members as processes, all
started together, running the functions the mapped tasks run) -> ``pipeline.transform``
(Dask into the clean zone) -> ``pipeline.load`` + ``pipeline.data_checks`` into the
throwaway warehouse. Exactly what the Airflow tasks call, minus the scheduler.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import say, stage
from flightpipe import pipeline
from flightpipe.ingest import procs
from flightpipe.ingest.topics import delete_consumer_group
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings

# Scaling points: months of 2013 replayed from January 1st (None = the whole year, as the
# `whole_year` ingest does).
SPANS: dict[str, ReplaySlice | None] = {
    "1 month": ReplaySlice(date(2013, 1, 1), 31),
    "3 months": ReplaySlice(date(2013, 1, 1), 90),
    "12 months": None,
}


def run_pipeline(settings: Settings, replay: ReplaySlice | None, label: str) -> dict[str, Any]:
    """Ingest, transform, load once; timings, counts and peak memory per stage."""
    started = time.perf_counter()
    with stage("ingest") as ingest_stage:
        ingested = pipeline.ingest(replay, timeout=600, settings=settings)
    events = sum(int(p["produced"]) for p in ingested["produced"])
    if ingested["landed"] + ingested["dlq"] != events:
        raise RuntimeError(f"{label}: produced {events} events but landed {ingested['landed']}")
    ingest_stage.detail = {
        "events": events,
        "flights": sum(
            int(p["produced"]) for p in ingested["produced"] if p["role"][:8] == "flights-"
        ),
        # From the start of the processes until every producer had finished.
        "producing_seconds": ingested["producing_seconds"],
        "landed": ingested["landed"],
    }
    say(
        f"  {label}: ingested {events:,} events in {ingest_stage.seconds:.2f} s "
        f"(producers done after {ingested['producing_seconds']:.2f} s)"
    )
    with stage("transform") as transform_stage:
        transformed = pipeline.transform(settings)
    transform_stage.detail = {"files": transformed["files"]}
    with stage("load") as load_stage:
        loaded = pipeline.load(settings)
        pipeline.data_checks(loaded, settings)
    timings: dict[str, float] = {}
    for batch in loaded["timings"]:
        for key, value in batch.items():
            timings[key] = round(timings.get(key, 0.0) + value, 3)
    load_stage.detail = {"rows_loaded": loaded["rows_loaded"], "timings": timings}
    wall = time.perf_counter() - started
    say(
        f"  {label}: transform {transform_stage.seconds:.2f} s, load + checks "
        f"{load_stage.seconds:.2f} s; {loaded['rows_loaded']:,} rows; end to end {wall:.2f} s"
    )
    return {
        "label": label,
        "replay": str(replay) if replay else "2013 (whole year)",
        "events": events,
        "wall_seconds": round(wall, 3),
        "events_per_second": round(events / wall),
        "stages": {
            "ingest": ingest_stage.as_dict(),
            "transform": transform_stage.as_dict(),
            "load": load_stage.as_dict(),
        },
    }


def consume_only(settings: Settings) -> dict[str, Any]:
    """The consumer members alone over topics that are already full (their own group and
    landing folder): the consume stage's own speed, set against ConsumerPerformance."""
    data_dir = Path(tempfile.mkdtemp(prefix="flightpipe-bench-consume-"))
    alone = Settings(
        **{
            **settings.model_dump(exclude_unset=True),
            "consumer_group": f"{settings.consumer_group}-alone",
            "data_dir": data_dir,
        }
    )
    try:
        plan = pipeline.plan_slice(whole_year=True, settings=alone)
        started = time.perf_counter()
        members = [
            procs.spawn_task(alone, "consume", member=i, members=alone.consumers, replay=plan)
            for i in range(alone.consumers)
        ]
        snapshot = pipeline.snapshot_offsets(plan, alone)
        outcomes = procs.wait_all(members, 600)
        seconds = time.perf_counter() - started
        results = [o.result for o in outcomes if o.result is not None]
        if len(results) != len(members):
            raise RuntimeError(f"consume-only: exit codes {[o.returncode for o in outcomes]}")
        landed = pipeline.check_landing(snapshot, results, alone)
    finally:
        delete_consumer_group(alone)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"seconds": round(seconds, 3), "members": len(members), **landed}
