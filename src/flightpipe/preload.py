"""Modules the pipeline's task processes import, for a parent to import once before it
forks them.

A task process spends 0.5-2 s of CPU importing pandas, pyarrow, the Kafka and PostgreSQL
clients, Dask and scikit-learn. Airflow's LocalExecutor forks every task process from the
scheduler, and :func:`flightpipe.pipeline.ingest` forks its producers and members from
itself: when the parent has imported these modules, each child starts with them loaded
(copy-on-write pages) instead of importing them again. On two cores, that was a large share
of a short cycle. Importing starts no threads, so forking afterwards is safe.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Final

log = logging.getLogger(__name__)

# What the producers and the consumer members import.
INGEST: Final = (
    "flightpipe.ingest.produce",
    "flightpipe.ingest.consume",
    "flightpipe.orchestration.stops",
)
# What every DAG task imports, for a scheduler that forks them all.
TASKS: Final = (
    *INGEST,
    "flightpipe.pipeline",
    "flightpipe.orchestration.cursor",
    "flightpipe.orchestration.timings",
    "flightpipe.warehouse.migrate",
    "flightpipe.warehouse.load",
    "flightpipe.warehouse.checks",
    "flightpipe.analytics.report",
    "flightpipe.analytics.charts",
    "flightpipe.ml.train",
    "flightpipe.ml.predict",
)


def import_modules(modules: Iterable[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def in_airflow_process(argv: Sequence[str] = sys.argv) -> None:
    """Called as each Airflow process starts (``airflow_local_settings``); in the scheduler
    (``airflow scheduler``), import what the tasks it will fork need.

    Then flightpipe's own modules are dropped again, keeping the libraries they imported:
    a task imports the pipeline's code afresh (about 0.1 s), so a scheduler started before
    the code changed never runs stale code, while the libraries (4-5 s) stay loaded.
    """
    if len(argv) < 2 or argv[1] != "scheduler":
        return
    started = time.perf_counter()
    import_modules(TASKS)
    for name in [m for m in sys.modules if m == "flightpipe" or m.startswith("flightpipe.")]:
        del sys.modules[name]
    log.info("flightpipe: task libraries imported in %.1f s", time.perf_counter() - started)
