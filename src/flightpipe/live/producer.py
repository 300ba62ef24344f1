"""One live producer role: its events of each day, sent when the replay clock reaches them.

Progress (every event before ``sent_until`` is delivered) is stored after each flush, so a
restarted producer goes on from there: at least once, never a gap. The replay cursor moves
past a day when every role has sent all of it (``clock.record_progress``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from confluent_kafka import Producer

from flightpipe.ingest import kafka_clients
from flightpipe.ingest.produce import (
    PRODUCER_TUNING,
    Delivery,
    canonical_role,
    producer_id,
    role_outboxes,
)
from flightpipe.ingest.topics import IngestError, ensure_topics
from flightpipe.ingest.wire import event_time
from flightpipe.live import clock as replay
from flightpipe.orchestration.cursor import LAST_DAY
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings

log = logging.getLogger(__name__)

# Wall seconds between two progress records (each one also re-reads the clock).
PROGRESS_EVERY: Final = 1.0
# Live events go out at once: a class watches them arrive.
LIVE_TUNING: Final = {**PRODUCER_TUNING, "linger.ms": 5}

Stop = Callable[[], bool]


@dataclass
class LiveResult:
    role: str
    sent: int = 0
    days: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Sender:
    """A producer that knows whether everything handed to it was delivered."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.role = role
        self.delivery = Delivery()
        self.producer: Producer = kafka_clients.producer(
            settings, producer_id(role), **LIVE_TUNING, **self.delivery.config()
        )
        self.sent = 0

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1

    def flush(self) -> None:
        """Wait for every delivery report; raises if anything was not delivered."""
        remaining = self.producer.flush(kafka_clients.FLUSH_TIMEOUT)
        if remaining or self.delivery.failed:
            raise IngestError(
                f"live producer {self.role}: {self.delivery.failed + remaining} messages not "
                f"delivered ({self.delivery.first_error or 'flush timed out'})"
            )


def run_role(
    settings: Settings, role: str, stop: Stop = lambda: False, days: int | None = None
) -> LiveResult:
    """Replay ``role`` on the live clock until ``stop()`` (or after ``days`` days)."""
    role = canonical_role(role)
    ensure_topics(settings)
    sender = _Sender(settings, role)
    if role not in replay.PACED_ROLES:
        # A bounded run (tests, demos) sends the reference tables once and is done.
        return _send_reference(settings, sender, stop if days is None else (lambda: True))
    result = LiveResult(role)
    try:
        while not stop() and (days is None or result.days < days):
            since = replay.sent_until(settings, role)
            if since is None:
                raise replay.LiveModeError("live mode was not started; run `make live`")
            day = replay.local_day(since)
            if day > LAST_DAY:
                time.sleep(0.5)  # 2013 done; the last role to finish starts it again
                continue
            if _send_day(settings, sender, day, since, stop):
                result.days += 1
    finally:
        sender.producer.flush(kafka_clients.FLUSH_TIMEOUT)
    result.sent = sender.sent
    return result


def _send_day(settings: Settings, sender: _Sender, day: date, since: datetime, stop: Stop) -> bool:
    """Send ``day``'s events from ``since`` as the clock reaches them; True if all were sent."""
    # Flights and weather events carry their event time (the paced roles' events do).
    pending = [
        (box.topic, key, value, event_time(ms))
        for box in role_outboxes(settings, sender.role, ReplaySlice(day, 1))
        for key, value, ms in zip(box.keys, box.values, box.event_ms, strict=True)
    ]
    pending = [item for item in pending if item[3] >= since]
    pending.sort(key=lambda item: item[3])
    day_end = replay.day_start(day + timedelta(days=1))
    clock = _live_clock(settings)
    last_record = time.monotonic()
    for topic, key, value, at in pending:
        if stop():  # also when behind the clock, where there is no wait to check it in
            _record(settings, sender, at)
            return False
        while (delay := clock.wall_seconds_until(at)) > 0:
            if stop():
                _record(settings, sender, at)
                return False
            sender.producer.poll(min(delay, 0.25))
            if time.monotonic() - last_record >= PROGRESS_EVERY:
                clock, last_record = _record(settings, sender, at), time.monotonic()
        sender.send(topic, key, value)
    while (delay := clock.wall_seconds_until(day_end)) > 0:
        if stop():
            _record(settings, sender, day_end)
            return False
        sender.producer.poll(min(delay, 0.25))
        if time.monotonic() - last_record >= PROGRESS_EVERY:
            # The wait above can end past midnight: progress beyond it would skip the
            # next day's first events, which are not sent yet.
            until = min(clock.now(), day_end)
            clock, last_record = _record(settings, sender, until), time.monotonic()
    _record(settings, sender, day_end)
    log.info("%s: %s sent (%d events so far)", sender.role, day, sender.sent)
    return True


def _record(settings: Settings, sender: _Sender, until: datetime) -> replay.Clock:
    """Flush, then store that everything before ``until`` is delivered; the clock, re-read
    (a restarted live mode may have changed its speed)."""
    sender.flush()
    replay.record_progress(settings, sender.role, until)
    return _live_clock(settings)


def _live_clock(settings: Settings) -> replay.Clock:
    clock = replay.read(settings)
    if clock is None or clock.mode != "live":
        raise replay.LiveModeError("live mode is off; `make live` starts it")
    return clock


def _send_reference(settings: Settings, sender: _Sender, stop: Stop) -> LiveResult:
    """Reference tables are small and compacted: sent once, then kept current by Kafka."""
    for box in role_outboxes(settings, sender.role, None):
        for key, value in zip(box.keys, box.values, strict=True):
            sender.send(box.topic, key, value)
    sender.flush()
    log.info("%s: %d reference events sent", sender.role, sender.sent)
    while not stop():
        time.sleep(0.5)
    return LiveResult(sender.role, sent=sender.sent)
