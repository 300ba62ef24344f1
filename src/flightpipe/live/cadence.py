"""The pace of the reports and the model in live mode.

Live loads come every few seconds. If each one updated the warehouse Asset, the reports and
ML DAGs would start after every load, and even their runs that do nothing cost a task process
each: on two cores those took the CPU the next load needed (``bench/RESULTS.md``, live mode).
So in live mode the load does not publish the warehouse Asset: ``flightpipe_live_publish``,
a DAG that runs every ``FLIGHTPIPE_LIVE_FOLLOW_MINUTES``, does, and only when a load has
finished since the reports and the model last started. In class mode every load publishes it,
as before.

When the followers last started is read from ``meta.task_runs`` (their timings teardown
writes it), so the rule needs no state of its own.
"""

from __future__ import annotations

from datetime import datetime

from flightpipe.live import clock
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

# The first task of each DAG that follows the warehouse.
FOLLOWERS = (("flightpipe_reports", "build_charts"), ("flightpipe_ml", "train"))

NEWEST_SQL = """
SELECT
    (SELECT max(finished_at) FROM meta.load_batches WHERE status = 'succeeded'),
    ARRAY(
        SELECT max(r.started_at)
        FROM unnest(%(dag_ids)s::text[], %(task_ids)s::text[]) AS f(dag_id, task_id)
        LEFT JOIN meta.task_runs AS r
            ON r.dag_id = f.dag_id AND r.task_id = f.task_id AND r.state = 'success'
        GROUP BY f.dag_id, f.task_id
    )
"""


def behind(newest_load: datetime | None, followers_started: list[datetime | None]) -> bool:
    """Whether a follower has not seen the newest load: it never succeeded, or its last
    success started before that load finished."""
    if newest_load is None:
        return False
    return any(started is None or started < newest_load for started in followers_started)


def publish_reason(settings: Settings) -> str | None:
    """Why the live warehouse should not be published to its followers now (None: it
    should)."""
    with connect(settings, "loader") as conn:
        current = clock.read_from(conn)
        if current is None or current.mode != "live":
            return "class mode: every load publishes the warehouse itself"
        row = conn.execute(
            NEWEST_SQL,
            {"dag_ids": [d for d, _ in FOLLOWERS], "task_ids": [t for _, t in FOLLOWERS]},
        ).fetchone()
    assert row is not None  # a SELECT without FROM always answers one row
    newest, started = row
    if behind(newest, started):
        return None
    if newest is None:
        return "live mode: no load has finished yet"
    return f"live mode: the reports and the model started after the newest load ({newest:%H:%M:%S})"
