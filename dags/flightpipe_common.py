"""Shared pieces of the flightpipe DAGs: Assets, defaults, cadence.

Kept light: DAG files are parsed often, so nothing heavy is imported at module level.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, get_current_context, teardown
from airflow.sdk.exceptions import AirflowSkipException

from flightpipe.settings import get_settings

# Assets chain the DAGs: each DAG runs when the one before it has published new data.
# Their URIs are fixed names, not paths from settings: every parse (scheduler, tests with
# private settings) must register the same Asset.
LANDING = Asset(name="flightpipe_landing", uri="flightpipe://landing")
CLEAN = Asset(name="flightpipe_clean", uri="flightpipe://clean")
WAREHOUSE = Asset(name="flightpipe_warehouse", uri="flightpipe://warehouse")

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
CYCLE = timedelta(minutes=get_settings().cycle_minutes)

DEFAULT_ARGS = {
    "owner": "flightpipe",
    # Every task is idempotent (upserts, atomic files, compare-and-set cursor): retrying is safe.
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=2),
    "execution_timeout": timedelta(minutes=20),
}

TAGS = ["flightpipe"]


def skip_if_asked(result: dict[str, Any]) -> dict[str, Any]:
    """A pipeline step that answers ``{"skipped": reason}`` (too little data to split yet, or
    nothing new for live mode's reports and model) marks its task skipped, not failed."""
    if "skipped" in result:
        raise AirflowSkipException(result["skipped"])
    return result


def record_timings() -> Any:
    """The teardown every DAG ends with: store this run's task durations in meta.task_runs
    (charted by the reports DAG). As a teardown it runs whatever happened upstream and does
    not decide the run's state. A factory, because a decorated task object is single-use.
    """

    @teardown
    def record_timings() -> int:
        from flightpipe import pipeline

        ctx = get_current_context()
        return pipeline.record_timings(ctx["dag"].dag_id, ctx["run_id"])

    return record_timings()
