"""
### flightpipe_ingest — replay a slice of 2013 through Kafka into the landing zone

Runs every few minutes (class mode; `FLIGHTPIPE_CYCLE_MINUTES`). Each run replays the next
slice of 2013 (`FLIGHTPIPE_SLICE_DAYS` days, cursor kept in `meta.replay_cursor`):

1. **plan_slice** brings the warehouse schema up to date (the replay cursor lives there),
   reads the cursor (or the `start`/`days`/`whole_year` params of a manual run) and opens the
   run in `meta.ingest_runs`.
2. **ensure_topics** creates the Kafka topics if missing (idempotent).
3. **produce** — five producers in parallel (mapped): flights from EWR, JFK and LGA,
   weather, and the reference tables. Idempotent producers, `acks=all`.
4. **consume** — the consumer group's members (mapped), running **at the same time as the
   producers**: one continuous flow. Each writes Parquet landing files and commits offsets
   only after the file is durable.
5. **snapshot_offsets** records the end offset of every partition once every producer has
   finished (whether it succeeded or not) and publishes it to the members, which stop
   exactly there: a run never hangs and never takes what arrives later.
6. **publish_landing** reconciles Kafka offsets with landed + dead-lettered records,
   advances the cursor, and updates the `flightpipe_landing` Asset, which starts
   `flightpipe_transform`. It fails if a producer failed; the cursor then stays.
7. **record_timings** (teardown) stores task durations in `meta.task_runs`.

Clear a failed run from **plan_slice**, not from a later task: a new run key makes the
members wait for the new snapshot.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from flightpipe.ingest import ROLES
from flightpipe.settings import get_settings
from flightpipe_common import (
    CYCLE,
    DEFAULT_ARGS,
    LANDING,
    START_DATE,
    TAGS,
    record_timings,
)

PRODUCERS = list(ROLES)


@dag(
    dag_id="flightpipe_ingest",
    schedule=CYCLE,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "kafka", "ingest"],
    doc_md=__doc__,
    params={
        "whole_year": Param(False, type="boolean", description="Replay all of 2013 in one run."),
        "start": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First local day to replay (default: the cursor).",
        ),
        "days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=365,
            description="Days to replay (default: FLIGHTPIPE_SLICE_DAYS).",
        ),
    },
)
def flightpipe_ingest() -> None:
    @task(doc_md="Migrate the warehouse, decide which days of 2013 this run replays.")
    def plan_slice() -> dict[str, Any]:
        from flightpipe import pipeline

        params = get_current_context()["params"]
        return pipeline.plan_slice(
            whole_year=bool(params.get("whole_year")),
            start=params.get("start"),
            days=params.get("days"),
        )

    @task(doc_md="Create the input, compacted reference and dead-letter topics if missing.")
    def ensure_topics() -> list[str]:
        from flightpipe import pipeline

        return pipeline.ensure_topics()

    @task(
        doc_md="One producer process per role; failed deliveries fail the task.",
        map_index_template="{{ task.op_kwargs['role'] }}",
        execution_timeout=timedelta(minutes=30),
    )
    def produce(role: str, replay: dict[str, Any]) -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.produce(role, replay)

    @task(
        doc_md="End offsets of every input partition once every producer is done; the "
        "consumer members stop there.",
        trigger_rule="all_done",
    )
    def snapshot_offsets(replay: dict[str, Any]) -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.snapshot_offsets(replay)

    @task(
        doc_md="A consumer-group member, beside the producers: land Parquet, then commit; "
        "stop at the snapshot once it is published.",
        execution_timeout=timedelta(minutes=30),
    )
    def consume(member: int, replay: dict[str, Any]) -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.consume(member, replay)

    @task(
        outlets=[LANDING],
        doc_md="Reconcile offsets = landed + dead-lettered, advance the cursor, publish.",
    )
    def publish_landing(
        replay: dict[str, Any], snapshot: dict[str, Any], consumed: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.publish_landing(replay, snapshot, list(consumed))

    replay = plan_slice()
    topics = ensure_topics()
    produced = produce.partial(replay=replay).expand(role=PRODUCERS)
    consumed = consume.partial(replay=replay).expand(member=list(range(get_settings().consumers)))
    topics >> [produced, consumed]
    snapshot = snapshot_offsets(replay)
    produced >> snapshot
    published = publish_landing(replay, snapshot, consumed)
    produced >> published
    published >> record_timings()


flightpipe_ingest()
