"""
### flightpipe_transform — Dask transformation of the landing zone into the clean zone

Starts whenever `flightpipe_ingest` publishes the `flightpipe_landing` Asset.

1. **transform** reads the committed landing files no load has taken yet on the Dask
   cluster: types, UTC times, flags, dedupe by natural key (latest offset wins), the weather
   join. Rows that cannot be made valid are kept aside with their reason. The result is
   published atomically as one Parquet batch in the clean zone, and the `flightpipe_clean`
   Asset is updated, which starts `flightpipe_load`.
2. **record_timings** (teardown) stores task durations in `meta.task_runs`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from flightpipe_common import (
    CLEAN,
    DEFAULT_ARGS,
    LANDING,
    START_DATE,
    TAGS,
    record_timings,
)


@dag(
    dag_id="flightpipe_transform",
    schedule=[LANDING],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "dask"],
    doc_md=__doc__,
)
def flightpipe_transform() -> None:
    @task(outlets=[CLEAN], doc_md="Dask over the new landing files; publish a clean batch.")
    def transform() -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.transform()

    # No migrate task: the ingest run that led here migrated the warehouse (so did `up`).
    transform() >> record_timings()


flightpipe_transform()
