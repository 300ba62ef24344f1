"""Run ingest work as separate OS processes, each a plain pid a supervisor or a test can
signal.

* :func:`spawn_task` forks this process to run one task function of
  :mod:`flightpipe.pipeline` (what the DAG's mapped tasks run): the child starts with every
  module its parent imported, as Airflow's task processes start from the scheduler's
  (``flightpipe.preload``), instead of paying a new interpreter and its imports.
* :func:`spawn` starts ``python -m flightpipe.ingest.cli ...`` (the command line's own
  children), a new interpreter whose stdout carries its result line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, Final

from flightpipe.settings import Settings

RESULT_PREFIX: Final = "RESULT "
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


class TaskChild:
    """A forked child running one task function; enough of ``Popen`` for the helpers here
    and for tests that signal it."""

    def __init__(self, task: str, kwargs: dict[str, Any], settings: Settings) -> None:
        self.args = [task, json.dumps(kwargs, default=str)]
        receive, send = _FORK.Pipe(duplex=False)
        self._receive: Connection | None = receive
        self._process = _FORK.Process(
            target=_run_task, args=(send, task, kwargs, settings), name=f"flightpipe-{task}"
        )
        self._process.start()
        send.close()
        self._result: dict[str, Any] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.pid is not None and self.poll() is None:
            os.kill(self._process.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to end (reading its result meanwhile, so a large one cannot
        block it); raises ``subprocess.TimeoutExpired`` past ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._receive is not None:
            # Readable once the result is sent, or at EOF when the child ended without one.
            if not self._receive.poll(timeout):
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            with contextlib.suppress(EOFError):
                self._result = self._receive.recv()
            self._receive.close()
            self._receive = None
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._process.join(left)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return self._process.exitcode

    @property
    def result(self) -> dict[str, Any] | None:
        return self._result


# Forked children start with the parent's modules; see the module docstring.
_FORK = multiprocessing.get_context("fork")


def _run_task(send: Any, task: str, kwargs: dict[str, Any], settings: Settings) -> None:
    from flightpipe import pipeline

    # The parent's handlers (a test runner's, a CLI's) are not this child's business.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    # Progress on stderr, as a task's log (a no-op where the parent configured logging).
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        result = pipeline.TASKS[task](**kwargs, settings=settings)
    except Exception as exc:  # the parent reports the exit code; this says why, in one line
        sys.stderr.write(f"error: {task}: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(1)
    send.send(result)
    send.close()


def spawn_task(settings: Settings, task: str, **kwargs: Any) -> TaskChild:
    """Run one function of ``flightpipe.pipeline`` (what a DAG task runs) in a forked child."""
    return TaskChild(task, kwargs, settings)


Child = subprocess.Popen[str] | TaskChild


def stop_all(procs: Sequence[Child], grace: float = 30.0) -> None:
    """Terminate the children still running; kill the ones that outlive ``grace``."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            _finish(proc, grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            _finish(proc, None)


@dataclass
class ChildOutcome:
    args: list[str]
    returncode: int
    result: dict[str, Any] | None


def _finish(proc: Child, timeout: float | None) -> dict[str, Any] | None:
    """Wait for ``proc``; its result (None when it gave none)."""
    if isinstance(proc, TaskChild):
        proc.wait(timeout)
        return proc.result
    out, _ = proc.communicate(timeout=timeout)
    return _parse(out)


def wait_all(procs: Sequence[Child], timeout: float | None) -> list[ChildOutcome]:
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
                result = _finish(proc, remaining)
            except subprocess.TimeoutExpired:
                proc.terminate()
                result = _finish(proc, 30)
            args = proc.args if isinstance(proc.args, list) else [proc.args]
            code = proc.returncode
            assert code is not None
            outcomes.append(ChildOutcome([str(a) for a in args], code, result))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                _finish(proc, None)
    return outcomes


def _forward_signals(procs: Sequence[Child]) -> dict[int, Any]:
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
