"""The replay clock of live mode, kept in ``meta.replay_clock`` so every producer process
(and the dashboard) reads the same time, and the mode that owns the replay cursor.

Replay time = ``anchor_replay + (now - anchor_wall) x speed``. Live mode starts at the
cursor's day; switching back to class mode leaves the cursor at the first day that not every
producer has sent in full, so class mode replays that day again (the warehouse keeps one row
per natural key, so nothing doubles).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg

from flightpipe.ingest import FLIGHT_ROLES
from flightpipe.orchestration.cursor import FIRST_DAY, LAST_DAY
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

# The replay's days are New York's local days (the source's clock).
LOCAL_TZ = ZoneInfo("America/New_York")
# The roles whose events carry an event time, and so follow the clock.
PACED_ROLES = (*FLIGHT_ROLES, "weather")
Mode = Literal["class", "live"]


class LiveModeError(RuntimeError):
    """The replay cursor is owned by the other mode; the message says what to run."""


@dataclass(frozen=True)
class Clock:
    mode: Mode
    anchor_replay: datetime
    anchor_wall: datetime
    speed: float

    def now(self, wall: datetime | None = None) -> datetime:
        """The replay instant at ``wall`` (default: now)."""
        elapsed = ((wall or datetime.now(UTC)) - self.anchor_wall).total_seconds()
        return self.anchor_replay + timedelta(seconds=elapsed * self.speed)

    def wall_seconds_until(self, replay: datetime) -> float:
        """Wall seconds until the clock shows ``replay`` (0 when it already has)."""
        return max(0.0, (replay - self.now()).total_seconds() / self.speed)


def day_start(day: date) -> datetime:
    """Local midnight of ``day``, as an aware instant."""
    return datetime.combine(day, time(0), LOCAL_TZ)


def local_day(instant: datetime) -> date:
    return instant.astimezone(LOCAL_TZ).date()


def read_from(conn: psycopg.Connection[Any]) -> Clock | None:
    """The clock as stored (any role that reads ``meta``: the dashboard uses the reader)."""
    row = conn.execute(
        "SELECT mode, anchor_replay, anchor_wall, speed FROM meta.replay_clock"
    ).fetchone()
    return None if row is None else Clock(*row)


def read(settings: Settings) -> Clock | None:
    with connect(settings, "loader") as conn:
        return read_from(conn)


def mode(settings: Settings) -> Mode:
    clock = read(settings)
    return "class" if clock is None else clock.mode


def require_class_mode(settings: Settings) -> None:
    """Class ingest runs refuse to replay while live producers own the cursor."""
    if mode(settings) == "live":
        raise LiveModeError(
            "live mode owns the replay cursor; run `make up` (class mode) to replay by cycles"
        )


def start_live(settings: Settings, speed: float | None = None) -> Clock:
    """Hand the cursor to live mode: the clock starts at the cursor's day, now.

    Already live: the clock keeps its replay time and only takes the new speed, so restarting
    live mode (or changing its speed) neither jumps nor repeats.
    """
    speed = speed or settings.replay_speed
    with connect(settings, "loader") as conn, conn.transaction():
        current = conn.execute(
            "SELECT mode, anchor_replay, anchor_wall, speed FROM meta.replay_clock FOR UPDATE"
        ).fetchone()
        if current is not None and current[0] == "live":
            anchor = Clock(*current).now()
        else:
            cursor_day = conn.execute("SELECT next_day FROM meta.replay_cursor").fetchone()
            anchor = day_start(cursor_day[0] if cursor_day else FIRST_DAY)
            _reset_progress(conn, anchor)
        conn.execute(
            "INSERT INTO meta.replay_clock (mode, anchor_replay, anchor_wall, speed) "
            "VALUES ('live', %(anchor)s, now(), %(speed)s) "
            "ON CONFLICT (id) DO UPDATE SET mode = 'live', anchor_replay = %(anchor)s, "
            "anchor_wall = now(), speed = %(speed)s, updated_at = now()",
            {"anchor": anchor, "speed": speed},
        )
    clock = read(settings)
    assert clock is not None
    return clock


def _reset_progress(conn: Any, anchor: datetime) -> None:
    conn.execute("DELETE FROM meta.live_progress")
    for role in PACED_ROLES:
        conn.execute(
            "INSERT INTO meta.live_progress (role, sent_until) VALUES (%s, %s)", (role, anchor)
        )


def stop_live(settings: Settings) -> None:
    """Give the cursor back to class mode (the live producers must be stopped first)."""
    try:
        with connect(settings, "loader") as conn:
            conn.execute(
                "UPDATE meta.replay_clock SET mode = 'class', updated_at = now() "
                "WHERE mode = 'live'"
            )
    except psycopg.errors.UndefinedTable:
        pass  # a warehouse not migrated yet was never live


def sent_until(settings: Settings, role: str) -> datetime | None:
    with connect(settings, "loader") as conn:
        row = conn.execute(
            "SELECT sent_until FROM meta.live_progress WHERE role = %s", (role,)
        ).fetchone()
    return None if row is None else row[0]


def record_progress(settings: Settings, role: str, until: datetime) -> date:
    """Store a role's progress; move the cursor past every day all roles have sent in full.

    Returns the cursor's day. The cursor moves one day at a time with a compare-and-set, so
    two roles finishing a day at once move it once.
    """
    # Autocommit: each role's progress is visible before it looks at the others', so of two
    # roles finishing a day at once at least one sees both and moves the cursor.
    with connect(settings, "loader", autocommit=True) as conn:
        conn.execute(
            "UPDATE meta.live_progress SET sent_until = greatest(sent_until, %s), "
            "updated_at = now() WHERE role = %s",
            (until, role),
        )
        while True:
            row = conn.execute(
                "SELECT c.next_day, (SELECT min(sent_until) FROM meta.live_progress) "
                "FROM meta.replay_cursor AS c"
            ).fetchone()
            assert row is not None
            cursor_day, slowest = row
            if slowest is None or slowest < day_start(cursor_day + timedelta(days=1)):
                return cursor_day
            following = cursor_day + timedelta(days=1)
            wrapped = following > LAST_DAY  # 2013 is over: start again, as class mode does
            with conn.transaction():
                moved = conn.execute(
                    "UPDATE meta.replay_cursor SET next_day = %s, updated_at = now() "
                    "WHERE next_day = %s",
                    (FIRST_DAY if wrapped else following, cursor_day),
                ).rowcount
                if moved and wrapped:
                    _reset_progress(conn, day_start(FIRST_DAY))
                    conn.execute(
                        "UPDATE meta.replay_clock SET anchor_replay = %s, anchor_wall = now(), "
                        "updated_at = now() WHERE mode = 'live'",
                        (day_start(FIRST_DAY),),
                    )
