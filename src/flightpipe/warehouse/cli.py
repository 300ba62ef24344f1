"""`flightpipe db ...`: schema migrations, transform + load, data checks."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from flightpipe.settings import get_settings

app = typer.Typer(help="The PostgreSQL warehouse: migrate, load, check.", no_args_is_help=True)
console = Console()


@app.command()
def migrate() -> None:
    """Apply pending schema migrations (idempotent)."""
    from flightpipe.warehouse.migrate import migrate as run_migrate

    applied = run_migrate(get_settings())
    if applied:
        console.print(f"[green]Applied[/] {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("Schema is up to date.")


@app.command()
def load(
    force: bool = typer.Option(False, "--force", help="Reload files already loaded."),
    local_dask: bool = typer.Option(
        False, "--local-dask", help="Use an in-process Dask cluster if the scheduler is down."
    ),
) -> None:
    """Transform new landing files with Dask and load them into the warehouse."""
    from flightpipe.warehouse.checks import DataCheckError
    from flightpipe.warehouse.load import load as run_load

    try:
        result = run_load(get_settings(), force=force, local_dask=local_dask)
    except DataCheckError as exc:
        console.print(f"[bold red]data checks failed[/] {exc}")
        raise typer.Exit(code=2) from exc
    if result.batch_id is None:
        console.print("Nothing new to load.")
        return
    table = Table(title=f"load batch {result.batch_id}: {result.files} file(s)")
    for col in ("topic", "landed", "duplicate", "loaded", "rejected"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for topic, c in result.counts.items():
        table.add_row(topic, *(str(c[k]) for k in ("landed", "duplicate", "loaded", "rejected")))
    console.print(table)
    changed = ", ".join(
        f"{t} +{c['inserted']}/~{c['updated']}"
        for t, c in result.changes.items()
        if any(c.values())
    )
    console.print(f"changed rows (inserted/updated): {changed or 'none'}")
    console.print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))


@app.command()
def check(
    scan: bool = typer.Option(
        False,
        "--scan",
        help="Also scan for orphans and duplicate keys where constraints rule them out "
        "(an audit that trusts no constraint).",
    ),
) -> None:
    """Run the data checks on the whole warehouse and store the results; exit 2 if broken."""
    from flightpipe.warehouse.checks import check_warehouse

    results = check_warehouse(get_settings(), raise_on_failure=False, scan=scan)
    table = Table(title="data checks")
    table.add_column("check")
    table.add_column("result")
    table.add_column("observed", justify="right")
    table.add_column("expected", justify="right")
    for r in results:
        mark = "[green]ok[/]" if r.passed else "[bold red]FAILED[/]"
        table.add_row(r.name, mark, f"{r.observed:g}", f"{r.expected:g}")
    console.print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(code=2)
