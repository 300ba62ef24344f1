"""
### flightpipe_reports — charts and an HTML report from the warehouse

Starts whenever `flightpipe_load` (or, in live mode, `flightpipe_live_publish`, at most
once every `FLIGHTPIPE_LIVE_FOLLOW_MINUTES`) publishes the `flightpipe_warehouse` Asset.
Every chart is drawn from SQL (`mart` views and `meta` tables), never from landing files.

1. **build_charts** renders the PNG charts into `data/reports/<run>/`.
2. **build_report** renders `index.html` (KPIs, charts, model metrics, data checks, links
   to earlier runs) and points `data/reports/latest` at it.
3. **record_timings** (teardown) stores task durations in `meta.task_runs`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from flightpipe_common import DEFAULT_ARGS, START_DATE, TAGS, WAREHOUSE, record_timings


@dag(
    dag_id="flightpipe_reports",
    schedule=[WAREHOUSE],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "charts"],
    doc_md=__doc__,
)
def flightpipe_reports() -> None:
    @task(doc_md="Render every chart from SQL into this run's report folder.")
    def build_charts() -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.build_charts(get_current_context()["run_id"])

    @task(doc_md="Render the HTML report and move the `latest` link to it.")
    def build_report(charts: dict[str, Any]) -> str:
        from flightpipe import pipeline

        return pipeline.build_report(charts)

    build_report(build_charts()) >> record_timings()


flightpipe_reports()
