"""Live mode's processes for tests: `flightpipe live produce` / `flightpipe live consume` as
child processes of the test (as `make live` supervises them), and a reader of the landing
notices that loads on each one, as the live DAG does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from flightpipe import pipeline
from flightpipe.ingest import ROLES, kafka_clients
from flightpipe.ingest.topics import INPUT_TOPICS, committed_offsets, end_offsets
from flightpipe.live import notices
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

# Replay seconds per wall second: one day of 2013 every 4 s.
SPEED = 86_400 / 4
MEMBERS = 2


def spawn(args: list[str], logs: Path) -> subprocess.Popen[bytes]:
    """``flightpipe live <args>``, logging to a file in ``logs`` (a pipe could fill up and
    block it). The private pipeline's FLIGHTPIPE_* variables are in os.environ."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{'-'.join(a.strip('-') for a in args)}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flightpipe.cli", "live", *args],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def failures(procs: list[subprocess.Popen[bytes]], logs: Path) -> list[str]:
    return [
        f"{' '.join(map(str, p.args))}: exit {p.returncode}\n" + _tail(logs, p)
        for p in procs
        if p.returncode
    ]


def _tail(logs: Path, proc: subprocess.Popen[bytes]) -> str:
    args = [str(a) for a in proc.args][4:]  # type: ignore[union-attr]
    path = logs / f"{'-'.join(a.strip('-') for a in args)}.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def consumers(logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    members = [spawn(["consume", "--member", str(i)], logs) for i in range(MEMBERS)]
    try:
        yield members
    finally:
        stop(members)
    assert not failures(members, logs)


@contextmanager
def producers(logs: Path, days: int | None) -> Iterator[list[subprocess.Popen[bytes]]]:
    extra = [] if days is None else ["--days", str(days)]
    procs = [spawn(["produce", "--role", role, *extra], logs) for role in ROLES]
    try:
        yield procs
    finally:
        stop(procs)
    assert not failures(procs, logs)


def caught_up(settings: Settings) -> bool:
    """Every record in the input topics is committed by the landing group."""
    for topic in INPUT_TOPICS:
        ends = end_offsets(settings, topic)
        committed = committed_offsets(settings, topic)
        if any(committed.get(p, -1) < end for p, end in ends.items() if end > 0):
            return False
    return True


class NoticeReader:
    """Reads the notices topic as the AssetWatcher does, and loads on each notice (the live
    DAG's task function)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consumer = kafka_clients.consumer(
            settings, f"{settings.consumer_group}-test-notices", **{"auto.offset.reset": "earliest"}
        )
        self.consumer.subscribe([notices.topic(settings)])
        self.seen: list[notices.Notice] = []
        self.loads = 0

    def load_while(self, busy: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while busy():
            assert time.monotonic() < deadline, "live mode did not finish in time"
            self.poll_and_load()
        self.poll_and_load()
        pipeline.load_landed(self.settings)  # whatever the last notice announced

    def poll_and_load(self) -> None:
        messages = self.consumer.consume(num_messages=1000, timeout=1.0)
        got = [notices.accept(m) for m in messages if m.error() is None]
        self.seen += [notices.decode(m.value()) for m in messages if m.value()]
        if any(got):
            pipeline.load_landed(self.settings)
            self.loads += 1

    def close(self) -> None:
        self.consumer.close()


def set_cursor(settings: Settings, day: date) -> None:
    with connect(settings, "loader") as conn:
        conn.execute("UPDATE meta.replay_cursor SET next_day = %s", (day,))
