"""`flightpipe report` (merged into the main CLI with add_typer)."""

from __future__ import annotations

import logging

import typer
from rich.console import Console

from flightpipe.cli_support import folder_name
from flightpipe.settings import get_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def report(
    run_id: str | None = typer.Option(
        None, callback=folder_name, help="Run folder name (default: UTC timestamp)."
    ),
    keep: int = typer.Option(50, min=1, help="How many runs to keep under the reports folder."),
) -> None:
    """Draw the charts from the warehouse and write the HTML report of a new run."""
    from flightpipe.analytics.report import build_report

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    index = build_report(get_settings(), run_id, keep_runs=keep)
    console.print(f"[green]report[/] {index}")
    console.print(f"latest: {index.parent.parent / 'latest' / index.name}")
