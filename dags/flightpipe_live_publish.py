"""
### flightpipe_live_publish — live mode: the reports and the model follow, at their own pace

Runs only in live mode (`make live`; `make up` pauses it again), every
`FLIGHTPIPE_LIVE_FOLLOW_MINUTES`. Live loads come every few seconds and do not update the
`flightpipe_warehouse` Asset themselves: the reports and ML DAGs would then start after every
one of them, and their task processes would take the cores the next load needs.

1. **publish_warehouse** updates the `flightpipe_warehouse` Asset when a live load has
   finished since the reports and the model last started (`meta.task_runs`), so
   `flightpipe_reports` and `flightpipe_ml` run; otherwise it is skipped and they do not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task

from flightpipe.settings import get_settings
from flightpipe_common import DEFAULT_ARGS, START_DATE, TAGS, WAREHOUSE, skip_if_asked


@dag(
    dag_id="flightpipe_live_publish",
    schedule=timedelta(minutes=get_settings().live_follow_minutes),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "live"],
    doc_md=__doc__,
)
def flightpipe_live_publish() -> None:
    @task(
        outlets=[WAREHOUSE],
        doc_md="Update the warehouse Asset when a live load is newer than the reports and ML.",
    )
    def publish_warehouse() -> dict[str, Any]:
        from flightpipe import pipeline

        return skip_if_asked(pipeline.publish_live())

    publish_warehouse()


flightpipe_live_publish()
