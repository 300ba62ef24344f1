"""The DAGs folder parses cleanly and wires the pipeline as designed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from flightpipe.settings import get_settings

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "flightpipe_ingest": {
        "plan_slice": set(),
        "ensure_topics": set(),
        "produce": {"plan_slice", "ensure_topics"},
        "snapshot_offsets": {"plan_slice", "produce"},
        # Continuous ingest: the members run beside the producers, not after them.
        "consume": {"plan_slice", "ensure_topics"},
        "publish_landing": {"plan_slice", "snapshot_offsets", "consume", "produce"},
        "record_timings": {"publish_landing"},
    },
    "flightpipe_transform": {
        "transform": set(),
        "record_timings": {"transform"},
    },
    "flightpipe_load": {
        "load": set(),
        "data_checks": {"load"},
        "record_timings": {"data_checks"},
    },
    "flightpipe_reports": {
        "build_charts": set(),
        "build_report": {"build_charts"},
        "record_timings": {"build_report"},
    },
    "flightpipe_ml": {
        "train": set(),
        "predict": {"train"},
        "record_timings": {"predict"},
    },
    # No timings teardown: it would hold the one run slot after every load.
    "flightpipe_live": {"load_landed": set()},
    "flightpipe_live_publish": {"publish_warehouse": set()},
}
LIVE_DAGS = {"flightpipe_live", "flightpipe_live_publish"}


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_tasks_and_dependencies(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.get_dag(dag_id)
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == EXPECTED[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md
    assert "flightpipe" in dag.tags
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    for t in dag.tasks:
        assert t.owner == "flightpipe"
        assert t.retries >= 1 and t.retry_exponential_backoff
        assert t.execution_timeout is not None
        if t.task_id != "record_timings":
            assert t.doc_md, f"{dag_id}.{t.task_id} has no doc_md"
    if dag_id not in LIVE_DAGS:
        assert dag.get_task("record_timings").is_teardown


def test_assets_chain_the_dags(dagbag) -> None:  # type: ignore[no-untyped-def]
    ingest = dagbag.get_dag("flightpipe_ingest")
    transform = dagbag.get_dag("flightpipe_transform")
    load = dagbag.get_dag("flightpipe_load")
    assert [o.name for o in ingest.get_task("publish_landing").outlets] == ["flightpipe_landing"]
    # The members stop only once the snapshot is published, so it is taken even when a
    # producer failed (the run then fails at publish_landing, with the cursor unmoved).
    assert ingest.get_task("snapshot_offsets").trigger_rule == "all_done"
    assert ingest.get_task("publish_landing").trigger_rule == "all_success"
    assert [o.name for o in transform.get_task("transform").outlets] == ["flightpipe_clean"]
    assert [o.name for o in load.get_task("data_checks").outlets] == ["flightpipe_warehouse"]
    assert ingest.timetable.delta == timedelta(minutes=get_settings().cycle_minutes)
    # Live, the loads leave the warehouse Asset to the publish DAG and its own pace.
    assert dagbag.get_dag("flightpipe_live").get_task("load_landed").outlets == []
    publish = dagbag.get_dag("flightpipe_live_publish")
    assert [o.name for o in publish.get_task("publish_warehouse").outlets] == [
        "flightpipe_warehouse"
    ]
    assert publish.timetable.delta == timedelta(minutes=get_settings().live_follow_minutes)
    schedules = {
        dag_id: {a.name for a in dagbag.get_dag(dag_id).timetable.asset_condition.objects}
        for dag_id in ("flightpipe_transform", "flightpipe_load", "flightpipe_reports",
                       "flightpipe_ml")
    }  # fmt: skip
    assert schedules == {
        "flightpipe_transform": {"flightpipe_landing"},
        "flightpipe_load": {"flightpipe_clean"},
        "flightpipe_reports": {"flightpipe_warehouse"},
        "flightpipe_ml": {"flightpipe_warehouse"},
    }


def test_producers_and_consumers_are_mapped(dagbag) -> None:  # type: ignore[no-untyped-def]
    ingest = dagbag.get_dag("flightpipe_ingest")
    produce = ingest.get_task("produce")
    consume = ingest.get_task("consume")
    # One producer per origin airport, plus weather and the reference tables.
    assert produce.op_kwargs_expand_input.value["role"] == [
        "flights-EWR",
        "flights-JFK",
        "flights-LGA",
        "weather",
        "reference",
    ]
    assert consume.op_kwargs_expand_input.value["member"] == list(range(get_settings().consumers))
    assert get_settings().consumers >= 3


def test_dag_files_import_nothing_heavy() -> None:
    # The DAG processor re-parses these files every few seconds: heavy libraries must only
    # be imported inside task bodies.
    code = (
        "import sys, json, runpy, pathlib;"
        f"sys.path.insert(0, {str(DAGS)!r});"
        f"[runpy.run_path(str(p)) for p in sorted(pathlib.Path({str(DAGS)!r}).glob('*.py'))];"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    # confluent_kafka is not on the list: the live DAG's stock Kafka trigger imports its
    # client at parse time (a few milliseconds).
    heavy = {"pandas", "dask", "distributed", "sklearn", "matplotlib", "pyarrow"}
    assert heavy & loaded == set()


def test_dags_folder_parses_quickly(dagbag) -> None:  # type: ignore[no-untyped-def]
    # Airflow's own budget per file is 30 s; ours is 2 s for the whole folder.
    total = sum(stat.duration.total_seconds() for stat in dagbag.dagbag_stats)
    assert total < 2.0, dagbag.dagbag_stats
