"""Run ingest roles as separate OS processes (``python -m flightpipe.ingest.cli ...``).

Subprocesses rather than multiprocessing: they also work inside daemonic task processes
(Airflow), and each one is a plain pid a supervisor or a test can signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from flightpipe.settings import Settings

RESULT_PREFIX: Final = "RESULT "


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child build the same Settings as ``settings``.

    Only explicitly set fields are passed, so the child's notion of "local service or
    external" (which looks at the fields set) matches the parent's.
    """
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json", exclude_unset=True).items():
        if value is not None:
            env[f"FLIGHTPIPE_{name.upper()}"] = str(value)
    return env


def spawn(settings: Settings, args: Sequence[str]) -> subprocess.Popen[str]:
    """Start ``flightpipe.ingest.cli <args>``; its stdout carries only the result line."""
    return subprocess.Popen(
        [sys.executable, "-m", "flightpipe.ingest.cli", *args],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )


def spawn_task(settings: Settings, task: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Run one function of ``flightpipe.pipeline`` (what a DAG task runs) as a child."""
    return subprocess.Popen(
        [sys.executable, "-m", "flightpipe.pipeline", task, json.dumps(kwargs)],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )


def stop_all(procs: Sequence[subprocess.Popen[str]], grace: float = 30.0) -> None:
    """Terminate the children still running; kill the ones that outlive ``grace``."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@dataclass
class ChildOutcome:
    args: list[str]
    returncode: int
    result: dict[str, Any] | None


def wait_all(procs: Sequence[subprocess.Popen[str]], timeout: float | None) -> list[ChildOutcome]:
    """Wait for every child; past ``timeout`` (None: no limit) the rest are terminated.

    SIGTERM/SIGINT to this process are passed on to the children, which then finish what
    is durable and exit; we keep waiting for them.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    outcomes = []
    previous = _forward_signals(procs)
    try:
        for proc in procs:
            remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
            try:
                out, _ = proc.communicate(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.terminate()
                out, _ = proc.communicate(timeout=30)
            args = proc.args if isinstance(proc.args, list) else [proc.args]
            outcomes.append(ChildOutcome([str(a) for a in args], proc.returncode, _parse(out)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outcomes


def _forward_signals(procs: Sequence[subprocess.Popen[str]]) -> dict[int, Any]:
    def forward(_sig: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, forward)
    except ValueError:
        pass  # not the main thread: signals are not ours to handle
    return previous


def _parse(out: str | None) -> dict[str, Any] | None:
    for line in reversed((out or "").splitlines()):
        if line.startswith(RESULT_PREFIX):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return parsed
    return None


def emit_result(result: dict[str, Any]) -> None:
    """Called by a child as its last act: one parseable line on stdout."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
