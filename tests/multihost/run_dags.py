"""Run the project's DAGs on the Airflow host: ``dag.test(use_executor=True)`` of each.

Started by the multi-host test inside the Airflow host's namespace, with the Airflow
environment of that host (metadata database on the cluster's PostgreSQL, execution API on
the host's own API server) and the cluster's FLIGHTPIPE_* settings. Every task is a real
task run: the LocalExecutor's worker processes run it through the Task SDK supervisor,
which talks to the API server over the network.

Prints one ``RESULT {json}`` line per DAG run and exits 1 at the first run that fails.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

RUNS: list[tuple[str, dict[str, Any] | None]] = [
    ("flightpipe_ingest", {"whole_year": True}),
    ("flightpipe_transform", None),
    ("flightpipe_load", None),
]


def main() -> int:
    dags = Path(__file__).resolve().parents[2] / "dags"
    sys.path.insert(0, str(dags))  # flightpipe_common, as the DAG processor does
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags))
    if bag.import_errors:
        print(f"RESULT {json.dumps({'import_errors': bag.import_errors})}", flush=True)
        return 1
    for dag_id, conf in RUNS:
        started = time.monotonic()
        run = bag.get_dag(dag_id).test(run_conf=conf, use_executor=True)
        tasks = {
            f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
            for ti in run.get_task_instances()
        }
        result = {"dag": dag_id, "state": str(run.state), "tasks": tasks,
                  "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
        print(f"RESULT {json.dumps(result)}", flush=True)
        if run.state != "success":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
