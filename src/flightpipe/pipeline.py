"""One function per DAG task: plain Python, small JSON-able results, no Airflow imports.

DAG files stay thin by calling exactly one of these; the CLI and tests can call them too.
Every function is safe to run again (the DAGs retry them).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flightpipe.settings import Settings, get_settings

if TYPE_CHECKING:
    from flightpipe.replay import ReplaySlice

log = logging.getLogger(__name__)


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
    """The slice this run replays, and the key under which its stop snapshot is published.

    Migrates first (a no-op when current): the cursor and the run live in the warehouse, and
    every later phase of the cycle relies on this.
    """
    from flightpipe.live.clock import require_class_mode
    from flightpipe.orchestration import cursor, stops

    settings = _settings(settings)
    migrate(settings)
    require_class_mode(settings)
    replay = cursor.plan(settings, whole_year=whole_year, start=start, days=days)
    return {**cursor.to_dict(replay), "run": stops.open_run(settings)}


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


def snapshot_offsets(replay: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """End offsets once every producer is done, published to the run's consumer members.

    Run it whether the producers succeeded or not: the members stop only when it is there.
    """
    from flightpipe.ingest.consume import encode_snapshot, snapshot
    from flightpipe.orchestration import stops

    settings = _settings(settings)
    until = snapshot(settings)
    stops.publish(settings, replay["run"], until)
    return {"snapshot": encode_snapshot(until)}


def consume(
    member: int,
    replay: dict[str, Any],
    members: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Member ``member`` of ``members`` (default ``FLIGHTPIPE_CONSUMERS``) of the landing
    group: starts with the producers, takes its share of the partitions, stops at the
    snapshot. A member that fails is retried (its task's retries) and goes on from the
    group's committed offsets."""
    from flightpipe.ingest.consume import consume_member, member_name
    from flightpipe.orchestration.stops import StopReader

    settings = _settings(settings)
    result = consume_member(
        settings,
        member=member_name(member),
        stop=StopReader(settings, replay["run"]),
        timeout=settings.consume_timeout,
        share=(member, members or settings.consumers),
    )
    return _jsonable(result)


def check_landing(
    snapshot: dict[str, Any], consumed: list[dict[str, Any]], settings: Settings | None = None
) -> dict[str, int]:
    """The group committed up to the snapshot, and every record read was landed or
    dead-lettered; raises otherwise."""
    from flightpipe.ingest.consume import decode_snapshot
    from flightpipe.ingest.topics import IngestError, committed_offsets_of

    settings = _settings(settings)
    until = decode_snapshot(snapshot["snapshot"])
    behind = {}
    every = committed_offsets_of(settings, until)
    for topic, ends in until.items():
        committed = every[topic]
        for partition, end in ends.items():
            if committed.get(partition, -1) < end:
                behind[f"{topic}[{partition}]"] = (committed.get(partition, -1), end)
    if behind:
        raise IngestError(f"consumer group stopped short of the snapshot: {behind}")
    landed = sum(int(c.get("landed", 0)) for c in consumed)
    dead = sum(int(c.get("dlq", 0)) for c in consumed)
    read = sum(int(c.get("consumed", 0)) for c in consumed)
    if read != landed + dead:
        raise IngestError(f"read {read} records but landed {landed} + dead-lettered {dead}")
    return {"consumed": read, "landed": landed, "dlq": dead}


def publish_landing(
    replay: dict[str, Any],
    snapshot: dict[str, Any],
    consumed: list[dict[str, Any]],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Check the landing against the snapshot, then move the replay cursor."""
    from flightpipe.orchestration import cursor

    settings = _settings(settings)
    landed = check_landing(snapshot, consumed, settings)
    next_day = cursor.advance(settings, cursor.from_dict(replay))
    return {"replay": replay, **landed, "next_day": next_day.isoformat()}


def ingest(
    replay: ReplaySlice | None = None,
    members: int | None = None,
    timeout: float = 900.0,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The ingest DAG's tasks without Airflow (the CLI and the benchmark): every producer
    and every consumer member as its own process, all started together, running the same
    functions as the mapped tasks; the cursor is left where it is.

    The processes are forked from this one after it imported what they need, as Airflow's
    task processes are forked from a scheduler that did (``flightpipe.preload``).
    """
    from flightpipe import preload
    from flightpipe.ingest import ROLES, procs
    from flightpipe.ingest.topics import IngestError

    settings = _settings(settings)
    # Imported here once: every child is forked from this process and starts with them.
    preload.import_modules(preload.INGEST)
    plan = plan_slice(
        whole_year=replay is None,
        start=None if replay is None else replay.start.isoformat(),
        days=None if replay is None else replay.days,
        settings=settings,
    )
    ensure_topics(settings)
    producers = [procs.spawn_task(settings, "produce", role=role, replay=plan) for role in ROLES]
    count = members or settings.consumers
    consumers = [
        procs.spawn_task(settings, "consume", member=i, members=count, replay=plan)
        for i in range(count)
    ]
    started = time.monotonic()
    try:
        produced = procs.wait_all(producers, timeout)
        # Published even when a producer failed: the members stop only once it is there.
        snapshot = snapshot_offsets(plan, settings)
        producing = time.monotonic() - started
        log.info("producers done after %.1f s; snapshot published", producing)
        consumed = procs.wait_all(consumers, timeout)
        seconds = time.monotonic() - started
        log.info("members done after %.1f s", seconds)
    finally:
        procs.stop_all(producers + consumers)
    failed = [o for o in produced + consumed if o.returncode != 0 or o.result is None]
    if failed:
        raise IngestError("ingest tasks failed: " + "; ".join(map(_child_failure, failed)))
    results = [o.result for o in consumed if o.result is not None]
    return {
        "replay": plan,
        "produced": [o.result for o in produced],
        "members": results,
        "producing_seconds": round(producing, 3),
        "seconds": round(seconds, 3),
        **check_landing(snapshot, results, settings),
    }


def _child_failure(outcome: Any) -> str:
    import json

    task, kwargs = outcome.args[0], json.loads(outcome.args[1])
    who = kwargs.get("role", f"member {kwargs.get('member')}")
    return f"{task} {who} exit {outcome.returncode}"


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


def load_landed(settings: Settings | None = None) -> dict[str, Any]:
    """Live mode's load: the landed files not loaded yet through Dask into the warehouse,
    then checked; one task, so a notice reaches ``mart`` with one task start-up."""
    settings = _settings(settings)
    cleaned = transform(settings)
    loaded = load(settings)
    if not loaded["batch_ids"]:
        return {"transform": cleaned, "batch_ids": [], "rows_loaded": 0}
    checked = data_checks(loaded, settings)
    return {
        "transform": cleaned,
        "batch_ids": loaded["batch_ids"],
        "rows_loaded": loaded["rows_loaded"],
        "passed": checked["passed"],
    }


# --- reports and ML ----------------------------------------------------------------------
def publish_live(settings: Settings | None = None) -> dict[str, Any]:
    """Live mode: whether the reports and the model should follow now (the warehouse Asset
    is updated when this returns without ``skipped``); see :mod:`flightpipe.live.cadence`."""
    from flightpipe.live.cadence import publish_reason

    reason = publish_reason(_settings(settings))
    return {"skipped": reason} if reason else {"published": True}


def build_charts(run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Every chart of this run."""
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


# --- in a child process ---------------------------------------------------------------------
# The tasks :func:`ingest` runs in forked children (``ingest.procs.spawn_task``).
TASKS: dict[str, Callable[..., dict[str, Any]]] = {"produce": produce, "consume": consume}
