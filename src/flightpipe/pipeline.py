"""One function per DAG task: plain Python, small JSON-able results, no Airflow imports.

DAG files stay thin by calling exactly one of these; the CLI and tests can call them too.
Every function is safe to run again (the DAGs retry them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flightpipe.settings import Settings, get_settings


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _jsonable(result: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return dict(result)


# --- ingest ------------------------------------------------------------------------------
def plan_slice(
    whole_year: bool = False,
    start: str | None = None,
    days: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    from flightpipe.orchestration import cursor

    replay = cursor.plan(_settings(settings), whole_year=whole_year, start=start, days=days)
    return cursor.to_dict(replay)


def ensure_topics(settings: Settings | None = None) -> list[str]:
    from flightpipe.ingest.topics import ensure_topics as ensure

    return ensure(_settings(settings))


def produce(role: str, replay: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    from flightpipe.ingest.produce import produce_role
    from flightpipe.orchestration import cursor

    result = produce_role(role, cursor.from_dict(replay), settings=_settings(settings))
    if result.failed:
        raise RuntimeError(
            f"{result.failed} of {result.produced} messages failed delivery: {result.first_error}"
        )
    return _jsonable(result)


def snapshot_offsets(settings: Settings | None = None) -> dict[str, Any]:
    from flightpipe.ingest.consume import encode_snapshot, snapshot

    return {"snapshot": encode_snapshot(snapshot(_settings(settings)))}


def consume(
    member: int, snapshot: dict[str, Any], settings: Settings | None = None
) -> dict[str, Any]:
    from flightpipe.ingest.consume import consume_member, decode_snapshot

    result = consume_member(
        _settings(settings), until=decode_snapshot(snapshot["snapshot"]), member=f"member-{member}"
    )
    return _jsonable(result)


def publish_landing(
    replay: dict[str, Any],
    snapshot: dict[str, Any],
    consumed: list[dict[str, Any]],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Check that the group committed up to the snapshot, then move the replay cursor."""
    from flightpipe.ingest.consume import decode_snapshot
    from flightpipe.ingest.topics import committed_offsets
    from flightpipe.orchestration import cursor

    settings = _settings(settings)
    until = decode_snapshot(snapshot["snapshot"])
    behind = {}
    for topic, ends in until.items():
        committed = committed_offsets(settings, topic)
        for partition, end in ends.items():
            if committed.get(partition, -1) < end:
                behind[f"{topic}[{partition}]"] = (committed.get(partition, -1), end)
    if behind:
        raise RuntimeError(f"consumer group stopped short of the snapshot: {behind}")
    landed = sum(int(c.get("landed", 0)) for c in consumed)
    dead = sum(int(c.get("dlq", 0)) for c in consumed)
    read = sum(int(c.get("consumed", 0)) for c in consumed)
    if read != landed + dead:
        raise RuntimeError(f"read {read} records but landed {landed} + dead-lettered {dead}")
    next_day = cursor.advance(settings, cursor.from_dict(replay))
    return {
        "replay": replay,
        "consumed": read,
        "landed": landed,
        "dlq": dead,
        "next_day": next_day.isoformat(),
    }


# --- warehouse ---------------------------------------------------------------------------
def migrate(settings: Settings | None = None) -> list[str]:
    from flightpipe.warehouse.migrate import migrate as apply

    return apply(_settings(settings))


def transform(settings: Settings | None = None) -> dict[str, Any]:
    """Dask over the new landing files, published as a clean batch (None: nothing new)."""
    from flightpipe.warehouse.load import transform as run

    batch = run(_settings(settings))
    if batch is None:
        return {"batch": None, "files": 0}
    return {"batch": batch.key, "files": len(batch.files), "seconds": batch.transform_seconds}


def load(settings: Settings | None = None) -> dict[str, Any]:
    """Every pending clean batch into the warehouse, each in one transaction."""
    from flightpipe.warehouse.load import load_pending

    results = load_pending(_settings(settings))
    return {
        "batch_ids": [r.batch_id for r in results],
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_changed": sum(r.rows_changed for r in results),
        "counts": [r.counts for r in results],
        "timings": [{k: round(v, 3) for k, v in r.timings.items()} for r in results],
    }


def data_checks(loaded: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Check the committed warehouse (row rules on the rows of the batches just loaded, or
    all rows when none); raises (fails the task) when a check is broken."""
    from flightpipe.warehouse.checks import check_warehouse

    settings = _settings(settings)
    passed: list[str] = []
    for batch_id in loaded.get("batch_ids") or [None]:
        results = check_warehouse(settings, batch_id)
        passed += [r.name for r in results if r.passed]
    return {"batch_ids": loaded.get("batch_ids"), "passed": sorted(set(passed))}


# --- reports and ML ----------------------------------------------------------------------
def build_charts(run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    from flightpipe.analytics.report import draw_charts

    return draw_charts(_settings(settings), run_id)


def build_report(charts: dict[str, Any], settings: Settings | None = None) -> str:
    from flightpipe.analytics.report import build_report as build

    return str(build(_settings(settings), charts["run_id"], reuse_charts=True))


def train(settings: Settings | None = None) -> dict[str, Any]:
    """Train and register; ``{"skipped": reason}`` while the warehouse is too small to split."""
    from flightpipe.ml.train import NotEnoughDataError
    from flightpipe.ml.train import train as fit

    try:
        return fit(_settings(settings)).summary()
    except NotEnoughDataError as exc:
        return {"skipped": str(exc)}


def predict(settings: Settings | None = None) -> dict[str, Any]:
    """Score new flights; ``{"skipped": reason}`` when no model is registered yet."""
    from flightpipe.ml.predict import NoModelError
    from flightpipe.ml.predict import predict as score

    try:
        return {"scored": score(_settings(settings))}
    except NoModelError as exc:
        return {"skipped": str(exc)}


# --- bookkeeping -------------------------------------------------------------------------
def record_timings(dag_id: str, run_id: str, settings: Settings | None = None) -> int:
    from flightpipe.orchestration.timings import record_task_runs

    return record_task_runs(_settings(settings), dag_id, run_id)
