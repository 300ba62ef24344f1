"""`flightpipe dlq list / show / replay`: see and replay what the consumers refused."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flightpipe.cli_support import OneLineErrors
from flightpipe.contract import TOPICS
from flightpipe.ingest.topics import IngestError
from flightpipe.settings import get_settings

app = typer.Typer(
    help="Dead letters: list, show and replay events the consumers refused.",
    cls=OneLineErrors,
    no_args_is_help=True,
)
console = Console()

Topic = enum.Enum("Topic", {t: t for t in TOPICS}, type=str)  # type: ignore[misc]
TopicArg = Annotated[Topic, typer.Argument(help="Source topic (without any prefix).")]
OffsetArg = Annotated[int, typer.Argument(min=0, help="Offset of the dead letter in <topic>.dlq.")]


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=1)


def _text(raw: bytes | None, limit: int) -> str:
    if raw is None:
        return "(null)"
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"… ({len(raw):,} bytes)"


@app.command("list")
def list_(
    topic: TopicArg,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, newest last.")] = 50,
) -> None:
    """The dead letters of a topic: DLQ offset, source partition and offset, reason."""
    from flightpipe.ingest.dlq import dead_letters

    try:
        letters = list(dead_letters(get_settings(), topic.value))
    except IngestError as exc:
        _fail(exc)
        return
    table = Table(title=f"{topic.value}.dlq: {len(letters)} dead letter(s)")
    for column in ("dlq offset", "source", "reason"):
        table.add_column(column, overflow="fold")
    for letter in letters[-limit:]:
        source = f"[{letter.source_partition}]@{letter.source_offset}"
        table.add_row(str(letter.dlq_offset), source, letter.reason)
    console.print(table)


@app.command()
def show(topic: TopicArg, offset: OffsetArg) -> None:
    """One dead letter in full: reason, source, key and value."""
    from flightpipe.ingest.dlq import find

    try:
        letter = find(get_settings(), topic.value, offset)
    except IngestError as exc:
        _fail(exc)
        return
    console.print(f"[bold]reason[/]  {letter.reason}", highlight=False)
    console.print(
        f"[bold]source[/]  {topic.value}[{letter.source_partition}]@{letter.source_offset}"
    )
    console.print(f"[bold]key[/]     {_text(letter.key, 200)}", highlight=False, markup=False)
    console.print(f"[bold]value[/]   {_text(letter.value, 4000)}", highlight=False, markup=False)


@app.command()
def replay(
    topic: TopicArg,
    offset: OffsetArg,
    value_file: Annotated[
        Path | None,
        typer.Option(
            "--value-file", exists=True, dir_okay=False, readable=True,
            help="The fixed event (JSON) to produce instead of the dead letter's value.",
        ),
    ] = None,
) -> None:  # fmt: skip
    """Re-produce a dead letter onto its source topic, fixed with --value-file if given; the
    next ingest run lands it (or dead-letters it again if it is still invalid)."""
    from flightpipe.ingest.dlq import find
    from flightpipe.ingest.dlq import replay as send

    settings = get_settings()
    try:
        letter = find(settings, topic.value, offset)
        value = value_file.read_bytes() if value_file is not None else None
        placed = send(settings, [letter], value)
    except (IngestError, OSError) as exc:
        _fail(exc)
        return
    partition, new_offset = placed[0]
    console.print(f"replayed onto {topic.value}[{partition}]@{new_offset}")
