"""Start the class-mode cycle: unpause the four DAGs and trigger the first ingest run."""

from __future__ import annotations

from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi
from flightpipe.settings import Settings

INGEST = "flightpipe_ingest"


def start_cycle(settings: Settings, timeout: float = 180) -> str | None:
    """Unpause every flightpipe DAG; trigger ingest once if it never ran. Returns the run id."""
    api = AirflowApi(settings, identity="admin")
    api.wait_for_dags(DAG_IDS, timeout=timeout)
    for dag_id in DAG_IDS:
        api.set_paused(dag_id, False)
    if api.runs(INGEST, limit=1):
        return None
    return api.trigger(INGEST)
