"""The pace of the reports and the model in live mode.

Every live load updates the warehouse Asset, and the reports and ML DAGs start on it. Left
alone they would run back to back (one finishes, the next queued event starts it), training
and drawing all the time on the cores the loads need. In live mode each of them runs at most
once every ``FLIGHTPIPE_LIVE_FOLLOW_MINUTES``: a run that comes sooner is skipped in its first
task. In class mode they run after every load, as before.

When a task last succeeded is read from ``meta.task_runs`` (the DAGs' timings teardown writes
it), so the rule needs no state of its own.
"""

from __future__ import annotations

from datetime import datetime

from flightpipe.live import clock
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

LAST_SUCCESS_SQL = """
SELECT max(ended_at), now() FROM meta.task_runs
WHERE dag_id = %(dag_id)s AND task_id = %(task_id)s AND state = 'success'
"""


def seconds_left(last: datetime | None, now: datetime, minutes: float) -> float:
    """Seconds until a task that last succeeded at ``last`` may run again (0: now)."""
    if last is None:
        return 0.0
    return max(0.0, minutes * 60 - (now - last).total_seconds())


def skip_reason(settings: Settings, dag_id: str, task_id: str) -> str | None:
    """Why ``task_id`` of ``dag_id`` should not run now, or ``None`` when it should."""
    with connect(settings, "loader") as conn:
        current = clock.read_from(conn)
        if current is None or current.mode != "live":
            return None
        row = conn.execute(LAST_SUCCESS_SQL, {"dag_id": dag_id, "task_id": task_id}).fetchone()
    assert row is not None  # an aggregate always answers one row
    last, now = row
    left = seconds_left(last, now, settings.live_follow_minutes)
    if left <= 0:
        return None
    return (
        f"live mode: {dag_id}.{task_id} ran at {last:%H:%M:%S}; the next run is due in "
        f"{left:.0f} s (FLIGHTPIPE_LIVE_FOLLOW_MINUTES={settings.live_follow_minutes:g})"
    )
