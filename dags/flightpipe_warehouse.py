"""
### flightpipe_warehouse — Dask transformation and load into the PostgreSQL warehouse

Starts whenever `flightpipe_ingest` publishes the `flightpipe_landing` Asset.

1. **migrate** applies pending versioned SQL migrations (no-op when current).
2. **transform_load** reads landing files not loaded yet on the Dask cluster (types, UTC
   times, flags, dedupe by natural key, weather join), COPYs them into `staging` and upserts
   dimensions then facts in one transaction, with an audit row in `meta.load_batches`.
   Loading the same files again changes nothing.
3. **data_checks** fails the run on orphan keys, duplicate natural keys, counts that do not
   reconcile, or values out of range; results land in `meta.check_results`.
4. **publish_warehouse** updates the `flightpipe_warehouse` Asset, which starts
   `flightpipe_reports` and `flightpipe_ml`.
5. **record_timings** (teardown) stores task durations in `meta.task_runs`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from flightpipe_common import (
    DEFAULT_ARGS,
    LANDING,
    START_DATE,
    TAGS,
    WAREHOUSE,
    migrate,
    record_timings,
)


@dag(
    dag_id="flightpipe_warehouse",
    schedule=[LANDING],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "dask", "postgres"],
    doc_md=__doc__,
)
def flightpipe_warehouse() -> None:
    @task(doc_md="Dask transform of new landing files, COPY to staging, upsert in one transaction.")
    def transform_load() -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.transform_load()

    @task(doc_md="Orphans, duplicates, reconciliation, ranges: fail loudly when broken.")
    def data_checks(batch: dict[str, Any]) -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.data_checks(batch)

    @task(outlets=[WAREHOUSE], doc_md="Tell the reports and ML DAGs that the warehouse moved.")
    def publish_warehouse(batch: dict[str, Any], checks: dict[str, Any]) -> dict[str, Any]:
        return {"batch": batch, "checks": checks}

    batch = transform_load()
    migrate() >> batch
    publish_warehouse(batch, data_checks(batch)) >> record_timings()


flightpipe_warehouse()
