"""Each DAG run with ``dag.test()`` against the real services, on a private pipeline.

The five runs build on each other (ingest lands a day, transform and load take it into the
warehouse, reports and ML read it), so they share one isolated database, topic prefix and
data folder. The cycle is poisoned: bad events wait on the topics before the ingest run, and
every run must succeed all the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest

from flightpipe.settings import Settings

pytestmark = pytest.mark.services

DAY = date(2013, 3, 5)


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    from flightpipe.settings import get_settings

    bag = DagBag(dag_folder=str(get_settings().home / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def scheduler_hands_off(stack: Settings) -> Iterator[None]:
    """Pause the DAGs in the running deployment while ``dag.test()`` drives their runs.

    A ``dag.test()`` run is a real run in the metadata database: an unpaused DAG's run would
    also be picked up by the live scheduler, and the two would race for the same task
    instances. The previous paused states are restored afterwards.
    """
    from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi

    api = AirflowApi(stack)
    api.wait_for_dags(DAG_IDS)
    before = {d["dag_id"]: d["is_paused"] for d in api.request("GET", "/dags")["dags"]}
    for dag_id in DAG_IDS:
        api.set_paused(dag_id, True)
    try:
        yield
    finally:
        for dag_id in DAG_IDS:
            api.set_paused(dag_id, before.get(dag_id, True))


def _run(dagbag: Any, dag_id: str, **conf: Any) -> Any:
    # The ingest DAG's consumer members wait for the snapshot its producers lead to: they
    # need tasks running side by side, which dag.test() gives only through an executor.
    parallel = dag_id == "flightpipe_ingest"
    run = dagbag.get_dag(dag_id).test(run_conf=conf or None, use_executor=parallel)
    failed = [ti.task_id for ti in run.get_task_instances() if ti.state != "success"]
    assert run.state == "success", f"{dag_id} failed tasks: {failed}"
    return run


def _poison(settings: Settings) -> None:
    """Two events that cannot be decoded and one whose delay breaks a value rule, on the
    topics before the ingest run produces the day."""
    import json

    import msgspec
    from confluent_kafka import Producer

    from flightpipe.contract.events import flight_key
    from flightpipe.ingest.topics import ensure_topics
    from flightpipe.replay import ReplaySlice
    from flightpipe.source import flight_events

    ensure_topics(settings)
    event = json.loads(msgspec.json.encode(flight_events(ReplaySlice(DAY, 1), "EWR")[0]))
    event.update(flight=9999, dep_delay=5000)
    key = flight_key(DAY.year, DAY.month, DAY.day, event["carrier"], 9999, "EWR").encode()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    topic = settings.topic("flights")
    producer.produce(topic, b'{"year": 2013, "dep_delay": ', key)
    producer.produce(topic, json.dumps(dict(event, dep_delay=10**20)).encode(), key)
    producer.produce(topic, json.dumps(event).encode(), key)
    assert producer.flush(30) == 0


def _source_day(nyc: Any, day: date) -> tuple[int, int]:
    f = nyc.flights
    f = f[(f.year == day.year) & (f.month == day.month) & (f.day == day.day)]
    return len(f), int(f.dep_time.isna().sum())


def _one(settings: Settings, query: str, params: Any = None) -> Any:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


@pytest.mark.usefixtures("scheduler_hands_off")
def test_dag_runs_build_the_warehouse(isolated: Settings, dagbag: Any, nyc: Any) -> None:
    flights, cancelled = _source_day(nyc, DAY)

    _poison(isolated)
    _run(dagbag, "flightpipe_ingest", start=DAY.isoformat(), days=1)
    from flightpipe.ingest.dlq import dead_letters

    # The two undecodable events, each dead-lettered with its reason. The DLQ is written
    # before the batch's commit, so a batch re-read after a rebalance among members that run
    # beside the producers can send a dead letter twice: same source offset, same place.
    letters = list(dead_letters(isolated, "flights"))
    assert len({(d.source_partition, d.source_offset) for d in letters}) == 2
    assert all(d.reason.startswith(("malformed", "schema")) for d in letters)
    landed = list((isolated.landing_dir / isolated.topic("flights")).rglob("*.parquet"))
    assert landed, "ingest landed no flight files"
    assert _one(isolated, "SELECT next_day FROM meta.replay_cursor") == date(2013, 1, 1)

    _run(dagbag, "flightpipe_transform")
    assert list((isolated.data_dir / "clean").glob("batch-*")), "transform published nothing"
    _run(dagbag, "flightpipe_load")
    assert not list((isolated.data_dir / "clean").glob("batch-*")), "the load left a batch"
    assert _one(
        isolated,
        "SELECT count(*), count(*) FILTER (WHERE is_cancelled) FROM dw.fact_flight "
        "JOIN dw.dim_date USING (date_key) WHERE full_date = %s",
        (DAY,),
    ) == (flights, cancelled)
    assert _one(isolated, "SELECT count(*) FROM dw.fact_flight") == flights
    assert _one(isolated, "SELECT count(*) FROM meta.check_results WHERE NOT passed") == 0
    assert _one(isolated, "SELECT count(*), min(reason) FROM meta.rejected_rows") == (
        1,
        "flight.dep_delay_min_in_range",
    )

    _run(dagbag, "flightpipe_reports")
    report = isolated.reports_dir / "latest" / "index.html"
    assert report.exists() and "<img" in report.read_text()

    _run(dagbag, "flightpipe_ml")
    scored = _one(isolated, "SELECT count(*) FROM ml.predictions")
    assert scored > 0
    assert _one(isolated, "SELECT count(*) FROM ml.model_runs") >= 1

    # Timings of the runs above were recorded by each DAG's teardown task.
    dags = _one(isolated, "SELECT count(DISTINCT dag_id) FROM meta.task_runs")
    assert dags == 5
