"""Which part of 2013 a run replays, and the clock that paces a replay.

Kept apart from :mod:`flightpipe.source` (which needs pandas to read the tables): producers,
consumers and the cursor only need these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from flightpipe.settings import Settings

YEAR: Final = 2013


@dataclass(frozen=True)
class ReplaySlice:
    """Local dates ``[start, start + days)`` of 2013; ``days`` beyond the year is harmless."""

    start: date = date(YEAR, 1, 1)
    days: int = 365

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"a replay slice needs at least one day, got {self.days}")

    @classmethod
    def whole_year(cls) -> ReplaySlice:
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplaySlice:
        return cls(date.fromisoformat(settings.replay_start), settings.slice_days)

    @property
    def end(self) -> date:
        """First local date after the slice."""
        return self.start + timedelta(days=self.days)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}+{self.days}d"


class ReplayClock:
    """Maps event time to wall time: ``speed`` event-seconds pass per wall-second.

    ``speed=None`` replays as fast as possible (batch mode). The first event anchors the
    clock, so a slice starts at once whatever its date.
    """

    def __init__(self, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.speed = speed
        self._anchor: tuple[datetime, float] | None = None

    @property
    def paced(self) -> bool:
        return self.speed is not None

    def delay(self, event_time: datetime) -> float:
        """Seconds to wait before emitting an event of this time (0 when it is due)."""
        if self.speed is None:
            return 0.0
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (event_time, now)
            return 0.0
        first_event, first_wall = self._anchor
        due = first_wall + (event_time - first_event).total_seconds() / self.speed
        return max(0.0, due - now)
