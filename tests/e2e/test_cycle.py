"""End to end through the real scheduler: ingest → warehouse → reports + ml, chained by Assets.

The DAGs run in the deployment `make up` started (live warehouse, default topics). A slice is
triggered through the REST API, the Asset-triggered DAGs are awaited, and the warehouse is
compared with figures computed here from the source data. Replaying the same slice again
must leave that slice's rows exactly as they were.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi
from flightpipe.settings import Settings
from flightpipe.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

DAY = date(2013, 9, 17)  # away from the class-mode cursor, which starts at 2013-01-01
TIMEOUT = 900

SLICE_FIGURES = """
SELECT count(*), count(*) FILTER (WHERE f.is_cancelled),
       count(DISTINCT (f.origin_airport_key, f.dest_airport_key))
FROM dw.fact_flight f JOIN dw.dim_date d USING (date_key)
WHERE d.full_date = %s
"""
DELAY_BY_CARRIER = """
SELECT a.carrier_code, round(avg(f.arr_delay_min)::numeric, 3)
FROM dw.fact_flight f JOIN dw.dim_date d USING (date_key) JOIN dw.dim_airline a USING (airline_key)
WHERE d.full_date = %s AND f.arr_delay_min IS NOT NULL
GROUP BY 1 ORDER BY 1
"""
# Every column of the slice's rows, lineage included, in key order: any change shows up.
CHECKSUM = """
SELECT md5(string_agg(f::text, '|' ORDER BY f.flight_key))
FROM dw.fact_flight f JOIN dw.dim_date d USING (date_key)
WHERE d.full_date = %s
"""


def _source_figures(nyc: Any, day: date) -> tuple[tuple[int, int, int], list[tuple[str, float]]]:
    f = nyc.flights
    f = f[(f.year == day.year) & (f.month == day.month) & (f.day == day.day)]
    totals = (len(f), int(f.dep_time.isna().sum()), len(f[["origin", "dest"]].drop_duplicates()))
    delays = f.dropna(subset=["arr_delay"]).groupby("carrier").arr_delay.mean().round(3)
    return totals, [(str(k), float(v)) for k, v in delays.sort_index().items()]


def _parse(ts: str | None) -> datetime:
    assert ts is not None
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _task_start(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> datetime:
    return _parse(
        next(
            ti["start_date"]
            for ti in api.task_instances(dag_id, run_id)
            if ti["task_id"] == task_id
        )
    )


def _wait_for_run_after(api: AirflowApi, dag_id: str, after: datetime) -> dict[str, Any]:
    """The first Asset-triggered run of ``dag_id`` due after ``after``, once finished."""
    runs = wait_until(
        lambda: [
            r
            for r in api.runs(dag_id, limit=20)
            if r["run_type"] == "asset_triggered" and _parse(r["run_after"]) >= after
        ],
        what=f"an asset-triggered {dag_id} run after {after}",
        timeout=TIMEOUT,
        interval=2,
        error=AssertionError,
    )
    first = min(runs, key=lambda r: _parse(r["run_after"]))
    return api.wait_for_run(dag_id, first["dag_run_id"], timeout=TIMEOUT)


def _cycle(api: AirflowApi) -> dict[str, dict[str, Any]]:
    started = datetime.now(UTC)
    run_id = api.trigger("flightpipe_ingest", {"start": DAY.isoformat(), "days": 1})
    ingest = api.wait_for_run("flightpipe_ingest", run_id, timeout=TIMEOUT)
    assert ingest["state"] == "success", ingest
    assert _parse(ingest["start_date"]) >= started
    # publish_landing updates the Asset as it ends; the warehouse run follows from that event.
    published = _task_start(api, "flightpipe_ingest", run_id, "publish_landing")
    transform = _wait_for_run_after(api, "flightpipe_transform", published)
    assert transform["state"] == "success", transform
    cleaned = _task_start(api, "flightpipe_transform", transform["dag_run_id"], "transform")
    warehouse = _wait_for_run_after(api, "flightpipe_load", cleaned)
    assert warehouse["state"] == "success", warehouse
    loaded = _task_start(api, "flightpipe_load", warehouse["dag_run_id"], "data_checks")
    reports = _wait_for_run_after(api, "flightpipe_reports", loaded)
    ml = _wait_for_run_after(api, "flightpipe_ml", loaded)
    assert (reports["state"], ml["state"]) == ("success", "success")
    return {
        "ingest": ingest,
        "transform": transform,
        "warehouse": warehouse,
        "reports": reports,
        "ml": ml,
    }


def test_full_cycle_through_the_scheduler(stack: Settings, nyc: Any) -> None:
    api = AirflowApi(stack)
    api.wait_for_dags(DAG_IDS)
    for dag_id in DAG_IDS:
        api.set_paused(dag_id, False)
    expected_totals, expected_delays = _source_figures(nyc, DAY)

    _cycle(api)
    with psycopg.connect(stack.warehouse_dsn) as conn:
        assert conn.execute(SLICE_FIGURES, (DAY,)).fetchone() == expected_totals
        delays = [(c, float(v)) for c, v in conn.execute(DELAY_BY_CARRIER, (DAY,)).fetchall()]
        assert delays == expected_delays
        before = conn.execute(CHECKSUM, (DAY,)).fetchone()
        timings = conn.execute(
            "SELECT count(DISTINCT dag_id) FROM meta.task_runs WHERE dag_id = ANY(%s)",
            (list(DAG_IDS),),
        ).fetchone()
    assert timings == (len(DAG_IDS),)
    assert (stack.reports_dir / "latest" / "index.html").exists()

    # The same slice again: new Kafka offsets, same flights; the warehouse must not move.
    _cycle(api)
    with psycopg.connect(stack.warehouse_dsn) as conn:
        assert conn.execute(SLICE_FIGURES, (DAY,)).fetchone() == expected_totals
        assert conn.execute(CHECKSUM, (DAY,)).fetchone() == before
