"""One full cycle through the live Airflow deployment, driven over its REST API.

One-day cycles (the class-mode unit) until the warehouse is published, and one whole-year
chain: trigger ``flightpipe_ingest`` with ``whole_year``, then wait for the ``flightpipe_transform``
and ``flightpipe_load`` runs its Assets start, then for the ``flightpipe_reports`` and
``flightpipe_ml`` runs the warehouse Asset starts. This uses the deployment as it is
(default topics, live warehouse), so it also measures Airflow's own cost: the time no task
of the chain was running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bench.common import noisy, say
from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi, AirflowApiError
from flightpipe.settings import Settings
from flightpipe.waiting import wait_until

INGEST, TRANSFORM, WAREHOUSE, REPORTS, ML = DAG_IDS


def available(settings: Settings) -> bool:
    """True when the API answers and our login works."""
    try:
        AirflowApi(settings, timeout=5).dag_ids()
    except AirflowApiError:
        return False
    return True


def _ts(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _queued(run: dict[str, Any]) -> datetime:
    # Runs created over the API (other people's manual runs too) may carry no queued_at.
    return _ts(run.get("queued_at") or run.get("start_date") or run["run_after"])


def _run_after(api: AirflowApi, dag_id: str, after: datetime, timeout: float) -> dict[str, Any]:
    """The first run of ``dag_id`` queued at or after ``after`` (an Asset event), finished."""
    started = time.monotonic()
    runs = wait_until(
        lambda: [r for r in api.runs(dag_id, limit=20) if _queued(r) >= after],
        what=f"a {dag_id} run queued after {after.isoformat()}",
        timeout=timeout,
        error=AirflowApiError,
    )
    first = min(runs, key=_queued)
    left = max(1.0, timeout - (time.monotonic() - started))
    return api.wait_for_run(dag_id, first["dag_run_id"], timeout=left)


def _end_of(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> datetime:
    for ti in api.task_instances(dag_id, run_id):
        if ti["task_id"] == task_id and ti.get("end_date"):
            return _ts(ti["end_date"])
    raise AirflowApiError(f"{dag_id} {run_id}: task {task_id} has no end date")


def _busy_union(intervals: list[tuple[datetime, datetime]]) -> float:
    """Seconds covered by at least one interval (tasks running in parallel count once)."""
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def _summarise(
    api: AirflowApi, runs: dict[str, dict[str, Any]], triggered: datetime
) -> dict[str, Any]:
    intervals: list[tuple[datetime, datetime]] = []
    per_dag: dict[str, Any] = {}
    for dag_id, run in runs.items():
        tis = [
            ti
            for ti in api.task_instances(dag_id, run["dag_run_id"])
            if ti.get("start_date") and ti.get("end_date")
        ]
        spans = [(_ts(ti["start_date"]), _ts(ti["end_date"])) for ti in tis]
        intervals += spans
        tasks: dict[str, float] = {}
        for ti, (start, end) in zip(tis, spans, strict=True):
            name = ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
            tasks[name] = round((end - start).total_seconds(), 3)
        busy = _busy_union(spans)
        wall = (_ts(run["end_date"]) - _queued(run)).total_seconds()
        per_dag[dag_id] = {
            "run_id": run["dag_run_id"],
            "state": run["state"],
            "queued_to_end_seconds": round(wall, 3),
            "start_delay_seconds": round(
                (_ts(run["start_date"]) - _queued(run)).total_seconds(), 3
            ),
            "task_busy_seconds": round(busy, 3),
            "task_sum_seconds": round(sum(tasks.values()), 3),
            "tasks": tasks,
        }
    end = max(_ts(r["end_date"]) for r in runs.values())
    chain = (end - triggered).total_seconds()
    busy = _busy_union(intervals)
    ingest_wh_end = _ts(runs[WAREHOUSE]["end_date"])
    return {
        "chain_wall_seconds": round(chain, 3),
        "ingest_to_warehouse_wall_seconds": round((ingest_wh_end - triggered).total_seconds(), 3),
        "task_busy_seconds": round(busy, 3),
        "overhead_seconds": round(chain - busy, 3),
        "overhead_share": round((chain - busy) / chain, 3) if chain else None,
        "dags": per_dag,
    }


@contextmanager
def _dags_running(api: AirflowApi) -> Iterator[None]:
    """Runs of paused DAGs are not scheduled: unpause all five for the measurement and
    restore what we changed afterwards (the class-mode schedule then also runs; see _idle)."""
    api.wait_for_dags(DAG_IDS, timeout=60)
    unpaused = [d for d in DAG_IDS if api.dag(d)["is_paused"]]
    for dag_id in unpaused:
        api.set_paused(dag_id, False)
    try:
        yield
    finally:
        for dag_id in unpaused:
            try:
                api.set_paused(dag_id, True)
            except AirflowApiError as exc:
                say(f"warning: could not pause {dag_id} again: {exc}")


def _idle(api: AirflowApi, timeout: float = 300) -> None:
    """Wait until no run of the chain is queued or running (a class-mode cycle, say), so the
    measured run neither queues behind one nor shares the cores with it."""
    busy = ("queued", "running")
    wait_until(
        lambda: not any(r["state"] in busy for d in DAG_IDS for r in api.runs(d, limit=5)),
        what="the pipeline's DAGs to be idle",
        timeout=timeout,
        interval=1,
        error=AirflowApiError,
    )


def _trigger(api: AirflowApi, conf: dict[str, Any]) -> tuple[str, datetime]:
    _idle(api)
    triggered = datetime.now(UTC)
    run_id = api.trigger(INGEST, conf)
    say(f"  airflow: triggered {INGEST} {run_id} {conf}")
    return run_id, triggered


def _follow_to_warehouse(
    api: AirflowApi, run_id: str, deadline: float
) -> tuple[dict[str, dict[str, Any]], dict[str, datetime]]:
    """The ingest run, then the transform and load runs its Assets started, all finished."""
    ingest = api.wait_for_run(INGEST, run_id, timeout=deadline - time.monotonic())
    if ingest["state"] != "success":
        raise AirflowApiError(f"{INGEST} {run_id} ended {ingest['state']}")
    published = _end_of(api, INGEST, run_id, "publish_landing")
    transform = _run_after(api, TRANSFORM, published, deadline - time.monotonic())
    cleaned = _end_of(api, TRANSFORM, transform["dag_run_id"], "transform")
    warehouse = _run_after(api, WAREHOUSE, cleaned, deadline - time.monotonic())
    if warehouse["state"] != "success":
        raise AirflowApiError(f"{WAREHOUSE} {warehouse['dag_run_id']} ended {warehouse['state']}")
    loaded = _end_of(api, WAREHOUSE, warehouse["dag_run_id"], "data_checks")
    runs = {INGEST: ingest, TRANSFORM: transform, WAREHOUSE: warehouse}
    return runs, {"landing": published, "clean": cleaned, "warehouse": loaded}


def one_day_cycle(
    settings: Settings, day: str = "2013-06-03", timeout: float = 300
) -> dict[str, Any]:
    """One day of 2013 from trigger until ``flightpipe_load`` published the warehouse."""
    before = [round(x, 2) for x in os.getloadavg()]
    with AirflowApi(settings) as api, _dags_running(api):
        run_id, triggered = _trigger(api, {"start": day, "days": 1})
        deadline = time.monotonic() + timeout
        runs, ends = _follow_to_warehouse(api, run_id, deadline)
    ingest = runs[INGEST]

    def since(at: datetime) -> float:
        return round((at - triggered).total_seconds(), 3)

    return {
        "day": day,
        "run_id": run_id,
        "trigger_to_landing_seconds": since(ends["landing"]),
        "trigger_to_clean_seconds": since(ends["clean"]),
        "trigger_to_warehouse_seconds": since(ends["warehouse"]),
        "start_delay_seconds": round(
            (_ts(ingest["start_date"]) - _queued(ingest)).total_seconds(), 3
        ),
        "load_before": before,
        "noisy": noisy(before),
    }


def run_cycle(settings: Settings, timeout: float = 480) -> dict[str, Any]:
    """Trigger a whole-year ingest and follow the chain to the end of reports and ml."""
    with AirflowApi(settings) as api, _dags_running(api):
        run_id, triggered = _trigger(api, {"whole_year": True})
        deadline = time.monotonic() + timeout
        runs, ends = _follow_to_warehouse(api, run_id, deadline)
        say(f"  airflow: warehouse after {(ends['warehouse'] - triggered).seconds} s")
        reports = _run_after(api, REPORTS, ends["warehouse"], deadline - time.monotonic())
        ml = _run_after(api, ML, ends["warehouse"], deadline - time.monotonic())
        say(f"  airflow: reports {reports['state']}, ml {ml['state']}")
        runs |= {REPORTS: reports, ML: ml}
        result = _summarise(api, runs, triggered)
        result["states"] = {d: r["state"] for d, r in runs.items()}
        return result
