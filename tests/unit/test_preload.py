"""The scheduler's preload: the task libraries stay imported, the pipeline's own code does
not (tasks import it afresh), and no other Airflow process imports anything."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from flightpipe.preload import in_airflow_process
in_airflow_process({argv!r})
loaded = set(sys.modules)
print(json.dumps({{
    "libraries": [m for m in ("pandas", "pyarrow", "confluent_kafka", "psycopg",
                              "dask.dataframe", "sklearn.ensemble", "matplotlib") if m in loaded],
    "own": sorted(m for m in loaded if m.startswith("flightpipe")),
}}))
"""


def _probe(argv: list[str]) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return result


def test_the_scheduler_keeps_the_libraries_and_forgets_its_own_code() -> None:
    loaded = _probe(["airflow", "scheduler", "--skip-serve-logs"])
    assert loaded["libraries"] == [
        "pandas", "pyarrow", "confluent_kafka", "psycopg", "dask.dataframe", "sklearn.ensemble",
        "matplotlib",
    ]  # fmt: skip
    assert loaded["own"] == []


def test_other_airflow_processes_import_nothing() -> None:
    loaded = _probe(["airflow", "api-server"])
    assert loaded["libraries"] == []
    assert loaded["own"] == ["flightpipe", "flightpipe.preload"]
