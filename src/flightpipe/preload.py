"""Modules the pipeline's task processes import, for a parent to import once before it
forks them.

A task process spends 0.5-2 s of CPU importing pandas, pyarrow, the Kafka and PostgreSQL
clients, Dask and scikit-learn. Airflow's LocalExecutor forks every task process from the
scheduler, and :func:`flightpipe.pipeline.ingest` forks its producers and members from
itself: when the parent has imported these modules, each child starts with them loaded
(copy-on-write pages) instead of importing them again. On two cores, that was a large share
of a short cycle. Importing starts no threads, so forking afterwards is safe (the
scheduler's workers start one that only sleeps and reads ``/proc``: see :func:`_watch_parent`).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
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
    os.register_at_fork(after_in_child=partial(_watch_parent, os.getpid()))


# How the LocalExecutor titles a worker waiting for its next task.
IDLE_WORKER_TITLE: Final = b"LocalExecutor: <idle>"
ORPHAN_CHECK_EVERY: Final = 1.0


def _watch_parent(scheduler: int) -> None:
    """In each process the scheduler forks (the LocalExecutor's workers, not the tasks they
    fork in turn): a thread that ends the process once the scheduler is gone and it is idle.

    The workers outlive a scheduler that is killed: they wait on a queue whose write end
    they hold themselves, so they wait for good, and they keep the scheduler's database
    socket open (a transaction it was in stays open, with its locks). A worker that is
    running a task when that happens finishes it first.
    """
    if os.getppid() != scheduler:
        return
    threading.Thread(
        target=_exit_when_orphaned_and_idle, args=(scheduler,), daemon=True,
        name="flightpipe-orphan-watch",
    ).start()  # fmt: skip


def _exit_when_orphaned_and_idle(scheduler: int) -> None:
    title = Path(f"/proc/{os.getpid()}/cmdline")
    while True:
        time.sleep(ORPHAN_CHECK_EVERY)
        if os.getppid() != scheduler and IDLE_WORKER_TITLE in title.read_bytes():
            os._exit(0)
