"""The replay cursor: which slice of 2013 the next ingest run replays.

It moves only after a slice has fully landed, with a compare-and-set so a retried task
cannot skip a slice.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

FIRST_DAY = date(2013, 1, 1)
LAST_DAY = date(2013, 12, 31)


def to_dict(replay: ReplaySlice) -> dict[str, Any]:
    return {"start": replay.start.isoformat(), "days": replay.days}


def from_dict(data: dict[str, Any]) -> ReplaySlice:
    return ReplaySlice(date.fromisoformat(data["start"]), int(data["days"]))


def current(settings: Settings) -> date:
    with connect(settings, "loader") as conn:
        row = conn.execute("SELECT next_day FROM meta.replay_cursor").fetchone()
    return row[0] if row else FIRST_DAY


def plan(
    settings: Settings,
    *,
    whole_year: bool = False,
    start: str | None = None,
    days: int | None = None,
) -> ReplaySlice:
    """The slice this run replays: explicit, the whole year, or the next one at the cursor."""
    if whole_year:
        return ReplaySlice.whole_year()
    first = date.fromisoformat(start) if start else current(settings)
    if not FIRST_DAY <= first <= LAST_DAY:
        raise ValueError(f"start {first} is outside 2013")
    span = min(days or settings.slice_days, (LAST_DAY - first).days + 1)
    return ReplaySlice(first, span)


def advance(settings: Settings, replayed: ReplaySlice) -> date:
    """Move the cursor past ``replayed`` if it still points at its start; wrap after 2013."""
    following = replayed.end if replayed.end <= LAST_DAY else FIRST_DAY
    with connect(settings, "loader") as conn:
        conn.execute(
            "UPDATE meta.replay_cursor SET next_day = %s, updated_at = now() WHERE next_day = %s",
            (following, replayed.start),
        )
        row = conn.execute("SELECT next_day FROM meta.replay_cursor").fetchone()
    assert row is not None
    return row[0]
