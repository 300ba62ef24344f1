"""Bounded waits and retries, on tenacity: every wait in flightpipe has a deadline and a name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)

T = TypeVar("T")


class WaitTimeout(RuntimeError):
    """A condition did not hold within its deadline."""


def _last_result(state: RetryCallState) -> object:
    assert state.outcome is not None
    return state.outcome.result()


def poll(
    fn: Callable[[], T], *, until: Callable[[T], bool], timeout: float, interval: float = 1.0
) -> T:
    """Call ``fn`` every ``interval`` s until ``until(result)`` or ``timeout``; the last result.

    Exceptions from ``fn`` are not retried: a probe that can fail catches its own errors.
    """
    retrying: Retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda result: not until(result)),
        retry_error_callback=_last_result,
    )
    return retrying(fn)


def wait_until(
    fn: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 1.0,
    error: type[Exception] = WaitTimeout,
) -> T:
    """Like :func:`poll` with a truthy condition, but raises ``error`` naming ``what``."""
    result = poll(fn, until=bool, timeout=timeout, interval=interval)
    if not result:
        raise error(f"{what} did not happen within {timeout:g} s")
    return result


def retry_transient(
    fn: Callable[[], T],
    *,
    on: tuple[type[BaseException], ...],
    attempts: int = 5,
    timeout: float = 60.0,
    first_wait: float = 0.5,
    max_wait: float = 8.0,
) -> T:
    """Call ``fn``, retrying the errors in ``on`` with exponential backoff, within bounds.

    The last error is re-raised once ``attempts`` or ``timeout`` runs out.
    """
    retrying: Retrying = Retrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(timeout),
        wait=wait_exponential(multiplier=first_wait, max=max_wait),
        retry=retry_if_exception_type(on),
        reraise=True,
    )
    return retrying(fn)
