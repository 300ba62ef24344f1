"""
### flightpipe_load — load clean batches into the PostgreSQL warehouse, then check it

Starts whenever `flightpipe_transform` publishes the `flightpipe_clean` Asset.

1. **load** takes every pending clean batch, oldest first. Per batch, in one transaction:
   COPY into `staging`, upserts of the dimensions, rows that break a rule of the data
   contract moved to `meta.rejected_rows`, upserts of the facts, the audit row in
   `meta.load_batches`. A retry loads the same batch again without redoing Dask; loading it
   twice changes nothing.
2. **data_checks** fails the run on orphan keys, duplicate natural keys, counts that do not
   reconcile, or rows breaking the contract's rules; results land in `meta.check_results`.
   They catch bugs, never input: bad rows were already set aside.
   When they pass, it updates the `flightpipe_warehouse` Asset, which starts
   `flightpipe_reports` and `flightpipe_ml`.
3. **record_timings** (teardown) stores task durations in `meta.task_runs`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from flightpipe_common import (
    CLEAN,
    DEFAULT_ARGS,
    START_DATE,
    TAGS,
    WAREHOUSE,
    record_timings,
)


@dag(
    dag_id="flightpipe_load",
    schedule=[CLEAN],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "postgres"],
    doc_md=__doc__,
)
def flightpipe_load() -> None:
    @task(doc_md="Pending clean batches into staging, quarantine, upserts: one transaction each.")
    def load() -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.load()

    @task(
        outlets=[WAREHOUSE],
        doc_md="Orphans, duplicates, reconciliation, rules: fail loudly when broken; when they "
        "pass, tell the reports and ML DAGs that the warehouse moved.",
    )
    def data_checks(loaded: dict[str, Any]) -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.data_checks(loaded)

    # No migrate task: the ingest run that led here migrated the warehouse (so did `up`).
    data_checks(load()) >> record_timings()


flightpipe_load()
