"""
### flightpipe_ml — train, evaluate, register and predict "arrives > 15 min late"

Starts whenever `flightpipe_load` (or, in live mode, `flightpipe_live_publish`, at most
once every `FLIGHTPIPE_LIVE_FOLLOW_MINUTES`) publishes the `flightpipe_warehouse` Asset.
Features come from the warehouse with SQL; predictions go back to it.

1. **train** fits a logistic-regression baseline and a gradient-boosted model on the
   earlier months and evaluates them on the later ones (ROC AUC, PR AUC, Brier score,
   against a trivial baseline); each model is saved and registered in `ml.model_runs`.
2. **predict** scores flights not yet scored by the newest model into `ml.predictions`
   (re-running adds nothing).
3. **record_timings** (teardown) stores task durations in `meta.task_runs`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task

from flightpipe_common import (
    DEFAULT_ARGS,
    START_DATE,
    TAGS,
    WAREHOUSE,
    record_timings,
    skip_if_asked,
)


@dag(
    dag_id="flightpipe_ml",
    schedule=[WAREHOUSE],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "ml"],
    doc_md=__doc__,
)
def flightpipe_ml() -> None:
    @task(
        doc_md="Fit and evaluate the models; register each run.",
        execution_timeout=timedelta(minutes=15),
    )
    def train() -> dict[str, Any]:
        from flightpipe import pipeline

        return skip_if_asked(pipeline.train())

    @task(doc_md="Score flights not yet scored by the newest model.")
    def predict(trained: dict[str, Any]) -> dict[str, Any]:
        from flightpipe import pipeline

        return skip_if_asked(pipeline.predict())

    predict(train()) >> record_timings()


flightpipe_ml()
