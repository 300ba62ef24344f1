"""Task durations of every DAG run, copied from Airflow's REST API into meta.task_runs."""

from __future__ import annotations

from typing import Any

from flightpipe.orchestration.airflow_api import AirflowApi
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

UPSERT = """
INSERT INTO meta.task_runs
    (dag_id, run_id, task_id, map_index, try_number, started_at, ended_at, state)
VALUES (%(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, %(try_number)s,
        %(started_at)s, %(ended_at)s, %(state)s)
ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO UPDATE
SET started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, state = EXCLUDED.state
"""


def finished_rows(task_instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for ti in task_instances:
        if not ti.get("start_date") or not ti.get("end_date"):
            continue  # still running (e.g. the task doing the recording)
        rows.append(
            {
                "dag_id": ti["dag_id"],
                "run_id": ti["dag_run_id"],
                "task_id": ti["task_id"],
                "map_index": ti.get("map_index", -1),
                "try_number": max(int(ti.get("try_number") or 1), 1),
                "started_at": ti["start_date"],
                "ended_at": ti["end_date"],
                "state": ti.get("state") or "unknown",
            }
        )
    return rows


def record_task_runs(settings: Settings, dag_id: str, run_id: str) -> int:
    """Store the finished task instances of one run; safe to call again (upsert).

    Reads as the viewer login: this teardown runs in every DAG, and only needs to read.
    """
    with AirflowApi(settings, identity="reader") as api:
        rows = finished_rows(api.task_instances(dag_id, run_id))
    if rows:
        with connect(settings, "loader") as conn, conn.cursor() as cur:
            cur.executemany(UPSERT, rows)
    return len(rows)
