"""`flightpipe` ingest commands: topics, produce, consume, ingest (and schemas).

Also the entry point of the producer/consumer child processes
(``python -m flightpipe.ingest.cli ...``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from flightpipe.cli_support import DAY_FORMAT, OneLineErrors, choices, positive, replay_day
from flightpipe.ingest import BATCH_MESSAGES, ROLES, procs
from flightpipe.ingest.topics import IngestError, ensure_topics, topic_specs, watermarks
from flightpipe.settings import Settings, get_settings

if TYPE_CHECKING:
    from flightpipe.ingest.consume import MemberResult
    from flightpipe.replay import ReplaySlice

# Producer and consumer modules are imported in the commands that use them: consumer
# processes then never pay for pandas, producer processes never for the landing code.

# OneLineErrors too: the producer and consumer processes run this app directly.
app = typer.Typer(help="Kafka ingestion: topics, producers, landing consumers.", cls=OneLineErrors)
console = Console(stderr=True)

StartOpt = Annotated[
    datetime | None,
    typer.Option(
        formats=[DAY_FORMAT],
        callback=replay_day,
        help="First local date of the slice (default: whole year).",
    ),
]
DaysOpt = Annotated[
    int | None, typer.Option(min=1, max=365, help="Days in the slice (default: settings).")
]
SpeedOpt = Annotated[
    float | None,
    typer.Option(
        callback=positive,
        help="Pace by event time: event seconds per wall second (default: no pacing).",
    ),
]
TimeoutOpt = Annotated[float, typer.Option(min=1, help="Give up after seconds.")]
MembersOpt = Annotated[
    int | None, typer.Option(min=1, help="Group members (processes); default settings.consumers.")
]
InProcessOpt = Annotated[bool, typer.Option("--in-process", hidden=True)]


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _replay(settings: Settings, start: datetime | None, days: int | None) -> ReplaySlice | None:
    from flightpipe.replay import ReplaySlice

    if start is None and days is None:
        return None
    return ReplaySlice(
        start.date() if start else date.fromisoformat(settings.replay_start),
        days if days is not None else settings.slice_days,
    )


def _snapshot_option(value: str | None) -> str | None:
    # Parent processes pass the end offsets as JSON; check them before any work starts.
    if value is None:
        return None
    import msgspec

    try:
        msgspec.json.decode(value, type=dict[str, dict[int, int]])
    except msgspec.DecodeError as exc:
        message = f"not a JSON object of topic -> partition -> offset ({exc})"
        raise typer.BadParameter(message) from exc
    return value


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except IngestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def topics() -> None:
    """Create the topics (idempotent) and show their partitions and end offsets."""
    _logging()
    settings = get_settings()
    with _errors():
        created = ensure_topics(settings)
        table = Table("topic", "partitions", "messages", "created")
        for spec in topic_specs(settings):
            base = spec.name.removeprefix(settings.topic_prefix)
            marks = watermarks(settings, base)
            table.add_row(
                spec.name,
                str(spec.partitions),
                f"{sum(high - low for low, high in marks.values()):,}",
                "yes" if spec.name in created else "",
            )
        console.print(table)


@app.command()
def produce(
    role: Annotated[
        list[str] | None,
        typer.Option(
            callback=choices(ROLES),
            help=f"Producer role(s): {', '.join(ROLES)} (default: all, in parallel).",
        ),
    ] = None,
    start: StartOpt = None,
    days: DaysOpt = None,
    speed: SpeedOpt = None,
    in_process: InProcessOpt = False,
) -> None:
    """Replay a slice of 2013 into Kafka: one process per role."""
    from flightpipe.ingest.produce import produce_all, produce_role

    _logging()
    settings = get_settings()
    replay = _replay(settings, start, days)
    roles = role or list(ROLES)
    with _errors():
        if in_process or len(roles) == 1:
            results = [produce_role(r, replay, speed, settings) for r in roles]
            if in_process:
                procs.emit_result(results[0].as_dict())
                return
        else:
            results = produce_all(replay, speed, roles, settings)
    table = Table("role", "delivered", "seconds")
    for r in results:
        table.add_row(r.role, f"{r.delivered:,}", f"{r.seconds:.2f}")
    console.print(table)


@app.command()
def consume(
    members: MembersOpt = None,
    follow: Annotated[bool, typer.Option(help="Keep consuming until SIGTERM.")] = False,
    member: Annotated[str | None, typer.Option(hidden=True)] = None,
    until: Annotated[str | None, typer.Option(hidden=True, callback=_snapshot_option)] = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Batch mode: give up after seconds.")
    ] = 900.0,
    batch_messages: Annotated[int, typer.Option(min=1, hidden=True)] = BATCH_MESSAGES,
    in_process: InProcessOpt = False,
) -> None:
    """Land topics into Parquet; batch mode stops at the end offsets seen at start."""
    from flightpipe.ingest.consume import consume_group, consume_member, decode_snapshot, snapshot

    _logging()
    settings = get_settings()
    with _errors():
        if in_process or members == 1:
            snap = None if follow else (decode_snapshot(until) if until else snapshot(settings))
            result = consume_member(
                settings, snap, member, None if follow else timeout, batch_messages
            )
            if in_process:
                procs.emit_result(result.as_dict())
            else:
                _print_consumed([result], result.seconds)
            return
        started = time.monotonic()
        results = consume_group(
            settings, members, follow=follow, timeout=timeout, batch_messages=batch_messages
        )
        _print_consumed(results, time.monotonic() - started)


def _print_consumed(results: list[MemberResult], seconds: float) -> None:
    table = Table("member", "consumed", "landed", "dlq", "files", "seconds")
    for r in results:
        table.add_row(
            r.member, f"{r.consumed:,}", f"{r.landed:,}", f"{r.dlq:,}", str(r.files),
            f"{r.seconds:.1f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"group done in {seconds:.1f} s")


@app.command()
def ingest(
    start: StartOpt = None,
    days: DaysOpt = None,
    members: MembersOpt = None,
    timeout: TimeoutOpt = 900.0,
) -> None:
    """Batch run as one flow: producers and consumer members start together; the members
    stop at the end offsets taken once the producers are done (needs the warehouse)."""
    from flightpipe import pipeline
    from flightpipe.ingest.consume import MemberResult

    _logging()
    settings = get_settings()
    replay = _replay(settings, start, days)
    with _errors():
        started = time.monotonic()
        outcome = pipeline.ingest(replay, members, timeout, settings)
        delivered = sum(int(p["delivered"]) for p in outcome["produced"])
        console.print(f"produced {delivered:,} events")
        members_ = [MemberResult(**m) for m in outcome["members"]]
        _print_consumed(members_, time.monotonic() - started)


@app.command()
def schemas(
    out: Annotated[
        Path | None, typer.Option(file_okay=False, help="Folder (default: schemas/events).")
    ] = None,
) -> None:
    """Export the JSON Schema of every event type."""
    from flightpipe.contract.events import export_schemas

    folder = out or get_settings().home / "schemas" / "events"
    for path in export_schemas(folder):
        console.print(str(path))


if __name__ == "__main__":
    app()
