"""
### flightpipe_live — live mode: every landed file, loaded within seconds

Runs only in live mode (`make live`; `make up` pauses it again). The live producers replay
2013 on the replay clock, the always-on landing consumers commit each durable file and
announce it on the `landing.notices` topic. An **AssetWatcher** on that topic (Airflow's
event-driven scheduling, Kafka message-queue trigger in the triggerer) turns each notice into
an event of the `flightpipe_landing_notices` Asset, and each event starts this DAG.

One run at a time: notices that arrive during a run queue up as the next one, and a run takes
every landed file not loaded yet, so they are coalesced.

1. **load_landed**: Dask over the new landing files, one transaction into the warehouse, the
   data checks on that batch.

It does not update the `flightpipe_warehouse` Asset: the reports and ML DAGs would then start
after every load and take the cores the next load needs. `flightpipe_live_publish` updates it
every `FLIGHTPIPE_LIVE_FOLLOW_MINUTES` when a load has finished since they last ran.

No `record_timings` teardown here: it would hold the one run slot for several seconds after
every load, and the next notice's load would wait for it (task durations of this DAG are in
the Airflow UI).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, dag, task

from flightpipe.live import notices
from flightpipe.settings import get_settings
from flightpipe_common import DEFAULT_ARGS, START_DATE, TAGS

NOTICES = Asset(
    name="flightpipe_landing_notices",
    uri="flightpipe://landing-notices",
    watchers=[
        AssetWatcher(
            name="landing_notices",
            trigger=MessageQueueTrigger(
                scheme="kafka",
                topics=[notices.topic(get_settings())],
                apply_function="flightpipe.live.notices.accept",
                kafka_config_id=notices.NOTICES_CONN_ID,
                poll_timeout=1,
                poll_interval=1,
            ),
        )
    ],
)


@dag(
    dag_id="flightpipe_live",
    schedule=[NOTICES],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retry_delay": timedelta(seconds=5)},
    tags=[*TAGS, "live"],
    doc_md=__doc__,
)
def flightpipe_live() -> None:
    @task(doc_md="New landing files through Dask into the warehouse, checked; one transaction.")
    def load_landed() -> dict[str, Any]:
        from flightpipe import pipeline

        return pipeline.load_landed()

    load_landed()


flightpipe_live()
