"""Start the pipeline's DAGs for the chosen mode.

Class mode: the five class DAGs unpaused, the first ingest run triggered; the live DAGs paused.
Live mode: ingest paused (the live producers replay instead), the live DAGs and the DAGs that
follow the warehouse unpaused.
"""

from __future__ import annotations

from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi
from flightpipe.settings import Settings

INGEST = "flightpipe_ingest"
LIVE_DAGS = ("flightpipe_live", "flightpipe_live_publish")


def start_cycle(settings: Settings, timeout: float = 180) -> str | None:
    """Pause and unpause the DAGs for ``settings.mode``; in class mode trigger ingest once if
    it never ran. Returns the run id it triggered."""
    api = AirflowApi(settings, identity="admin")
    api.wait_for_dags((*DAG_IDS, *LIVE_DAGS), timeout=timeout)
    live = settings.mode == "live"
    for dag_id in DAG_IDS:
        api.set_paused(dag_id, live and dag_id == INGEST)
    for dag_id in LIVE_DAGS:
        api.set_paused(dag_id, not live)
    if live or api.runs(INGEST, limit=1):
        return None
    return api.trigger(INGEST)
