"""`flightpipe live ...`: the processes of live mode (`make live` runs them supervised)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from flightpipe.cli_support import OneLineErrors
from flightpipe.ingest import ROLES
from flightpipe.settings import get_settings

app = typer.Typer(no_args_is_help=True, cls=OneLineErrors)
console = Console(stderr=True)


def member_name(index: int) -> str:
    """Live members have names of their own: they never fence a class run's members."""
    return f"live-{index}"


class _Stop:
    """SIGTERM/SIGINT ask the loop to finish what it holds and exit."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, _sig: int, _frame: FrameType | None) -> None:
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )  # fmt: skip


@app.command()
def produce(
    role: Annotated[str, typer.Option(help=f"Producer role: one of {', '.join(ROLES)}.")],
    days: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many whole days (default: never).")
    ] = None,
) -> None:
    """Replay one producer role on the live clock until stopped."""
    from flightpipe.ingest.produce import canonical_role
    from flightpipe.ingest.topics import IngestError
    from flightpipe.live.clock import LiveModeError
    from flightpipe.live.producer import run_role

    if canonical_role(role) not in ROLES:
        console.print(f"[red]error:[/red] unknown role {role!r}; one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    _logging()
    try:
        result = run_role(get_settings(), role, _Stop(), days)
    except (LiveModeError, IngestError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{result.role}: {result.sent:,} events sent, {result.days} days complete")


@app.command()
def consume(
    member: Annotated[int, typer.Option(min=0, help="Member index (its name is live-N).")] = 0,
) -> None:
    """An always-on landing member: lands, commits, then announces each commit."""
    from flightpipe.ingest.consume import consume_member
    from flightpipe.ingest.topics import IngestError

    _logging()
    try:
        result = consume_member(get_settings(), member=member_name(member), notify=True)
    except IngestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{result.member}: {result.landed:,} landed, {result.dlq:,} to the DLQ")


@app.command()
def clock() -> None:
    """Show the replay clock and who owns the replay cursor."""
    from flightpipe.live import clock as replay
    from flightpipe.orchestration.cursor import current

    settings = get_settings()
    now = replay.read(settings)
    day = current(settings)
    if now is None or now.mode == "class":
        console.print(f"class mode; next day replayed: {day}")
        return
    console.print(
        f"live mode at {now.speed:g}x: replay clock {now.now():%Y-%m-%d %H:%M} UTC, cursor {day}"
    )
