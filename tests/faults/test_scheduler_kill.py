"""The Airflow scheduler SIGKILLed while a triggered cycle runs; the cycle still completes.

Runs in the deployment `make up` started (live warehouse, default topics), like the e2e
test, on a day of its own. Supervisor restarts the scheduler; the tasks it had started run
on or are retried, and the day's flights in the warehouse equal the source's.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import date, datetime
from typing import Any

import psutil
import psycopg
import pytest

from flightpipe.orchestration.airflow_api import AirflowApi
from flightpipe.settings import Settings
from flightpipe.stack.postgres import AIRFLOW_IDLE_IN_TRANSACTION_S
from flightpipe.waiting import wait_until

try:  # the tests folders may or may not be packages
    from .conftest import is_dead, kill, program_pid, wait_until_healthy
except ImportError:
    from conftest import is_dead, kill, program_pid, wait_until_healthy

pytestmark = [pytest.mark.services, pytest.mark.faults, pytest.mark.timeout(1500)]

DAY = date(2013, 10, 22)  # away from the class-mode cursor and from the e2e test's day
TIMEOUT = 1200


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _running_tasks(api: AirflowApi, run_id: str) -> list[str]:
    tis = api.task_instances("flightpipe_ingest", run_id)
    return [ti["task_id"] for ti in tis if ti["state"] == "running"]


def test_scheduler_killed_during_a_cycle(stack: Settings, nyc: Any) -> None:
    api = AirflowApi(stack)
    run_id = api.trigger("flightpipe_ingest", {"start": DAY.isoformat(), "days": 1})
    wait_until(lambda: _running_tasks(api, run_id), what="an ingest task running",
               timeout=TIMEOUT, interval=0.5)  # fmt: skip
    scheduler = psutil.Process(program_pid(stack, "airflow-scheduler"))
    workers = scheduler.children()  # the LocalExecutor's, forked from it
    assert workers
    kill(scheduler.pid)
    wait_until_healthy(stack)

    ingest = api.wait_for_run("flightpipe_ingest", run_id, timeout=TIMEOUT)
    assert ingest["state"] == "success", ingest
    # They outlive the scheduler; once idle, they go too (with its database session).
    wait_until(lambda: all(is_dead(w.pid) for w in workers),
               what="the killed scheduler's executor workers to exit", timeout=120,
               interval=1, error=AssertionError)  # fmt: skip
    ended = _parse(ingest["end_date"])
    load = wait_until(
        lambda: [
            r
            for r in api.runs("flightpipe_load", limit=20)
            if r["state"] == "success" and r.get("start_date") and _parse(r["start_date"]) > ended
        ],
        what="a successful load run after the ingest run",
        timeout=TIMEOUT,
        interval=2,
        error=AssertionError,
    )
    assert load

    f = nyc.flights
    day = f[(f.year == DAY.year) & (f.month == DAY.month) & (f.day == DAY.day)]
    with psycopg.connect(stack.dsn("reader")) as conn:
        loaded = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE f.is_cancelled) FROM dw.fact_flight f"
            " JOIN dw.dim_date d USING (date_key) WHERE d.full_date = %s",
            [DAY],
        ).fetchone()
        stuck = conn.execute(
            "SELECT count(*) FROM meta.load_batches WHERE status = 'running'"
        ).fetchone()
    assert loaded == (len(day), int(day.dep_time.isna().sum()))
    assert stuck == (0,)


def test_a_stale_airflow_session_gives_its_locks_back(airflow_db_url: str) -> None:
    """What a scheduler killed inside a transaction leaves: a session still open (the
    executor's workers it forked keep the socket) and idle in its transaction. The server
    closes it, so its locks go back to the next scheduler."""
    key = secrets.randbits(62)
    stale = psycopg.connect(airflow_db_url, connect_timeout=5)
    try:
        stale.execute("SELECT pg_advisory_xact_lock(%s)", [key])  # then idle, in a transaction
        with psycopg.connect(airflow_db_url, autocommit=True, connect_timeout=5) as other:

            def taken() -> bool:
                row = other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
                return bool(row and row[0])

            assert not taken()
            wait_until(taken, what="the stale session's lock released",
                       timeout=AIRFLOW_IDLE_IN_TRANSACTION_S + 30, interval=1)  # fmt: skip
            other.execute("SELECT pg_advisory_unlock(%s)", [key])
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            stale.execute("SELECT 1")
    finally:
        with contextlib.suppress(psycopg.Error):
            stale.close()
