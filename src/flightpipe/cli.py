"""`flightpipe <verb>`: a thin command line over the package's Python API."""

from __future__ import annotations

import os
import shutil
import sys

import typer
from rich.console import Console
from rich.table import Table

from flightpipe.cli_support import OneLineErrors
from flightpipe.settings import Settings, get_settings
from flightpipe.stack.errors import StackError

app = typer.Typer(
    help="flightpipe: NYC flights 2013 through Kafka, Dask, PostgreSQL and Airflow 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


@app.command()
def up() -> None:
    """Install what is missing and start Kafka, PostgreSQL, Dask and Airflow (idempotent)."""
    from flightpipe.stack import up as stack

    try:
        result = stack.up(log=console.print)
    except StackError as exc:
        _fail(str(exc))
        return
    settings = result.settings
    started = ", ".join(result.started) or "nothing new (already running)"
    console.print(f"[green]Stack is up[/] in {result.seconds:.1f} s; started: {started}")
    where = f" (S3 API {settings.s3_endpoint})" if settings.s3_storage else ""
    console.print(
        f"""
  Airflow UI      {settings.airflow_base_url}  (user [bold]{settings.airflow_admin_user}[/],
                  password: [bold]make password[/])
  Dashboard       {settings.dashboard_url}  (live: replay clock, lag, freshness, loads)
  Dask dashboard  http://127.0.0.1:{settings.dask_dashboard_port}/status
  Warehouse       [bold]make psql[/]  (PostgreSQL on 127.0.0.1:{settings.pg_port})
  Kafka           {settings.kafka_bootstrap}
  Reports         {settings.reports_dir}/latest/index.html
  Zones           {settings.storage_base}{where}
  Logs            {settings.run_dir}/logs/

{_cadence(settings)}
  `make status` checks every service again.
"""
    )


def _cadence(settings: Settings) -> str:
    airflow = settings.airflow_base_url
    if settings.mode == "live":
        lines = [
            f"Live mode: the producers replay 2013 at {settings.replay_speed:g}x; every file",
            f"the consumers land starts {airflow}/dags/flightpipe_live (an AssetWatcher",
            "on the landing notices); reports and ml follow every "
            f"{settings.live_follow_minutes:g} min. `make up` is class mode again.",
        ]
    elif not settings.autostart:
        lines = ["FLIGHTPIPE_AUTOSTART=false: the DAGs were not unpaused (the Airflow UI can)."]
    else:
        lines = [
            f"To watch a cycle: open {airflow}/dags/flightpipe_ingest and use the",
            "Grid view (runs and tasks), Graph (how tasks connect) and Gantt (where time goes).",
            f"A new ingest run starts every {settings.cycle_minutes} min; the warehouse, reports",
            "and ml DAGs follow through Assets.",
        ]
    return "\n".join(f"  {line}" for line in lines)


@app.command()
def down() -> None:
    """Stop every service; data is kept."""
    from flightpipe.stack import up as stack

    stack.down(log=console.print)


@app.command()
def clean(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Stop everything and delete all local state (databases, topics, landing, reports)."""
    from flightpipe.stack import up as stack

    if not yes and not typer.confirm("Delete all local flightpipe state?"):
        raise typer.Exit(code=1)
    stack.clean(log=console.print)


@app.command()
def status() -> None:
    """Show each service's process state and the result of a real health probe."""
    from flightpipe.stack import up as stack

    settings = get_settings()
    processes, memory, probes = stack.status(settings)
    table = Table(title="flightpipe services")
    table.add_column("service")
    table.add_column("processes")
    table.add_column("memory", justify="right")
    table.add_column("health")
    table.add_column("detail", overflow="fold")
    for item in probes:
        procs = {k: v for k, v in processes.items() if k.startswith(item.service)}
        proc_text = ", ".join(f"{k}={v}" for k, v in procs.items()) or "external / not managed"
        rss = sum(v for k, v in memory.items() if k.startswith(item.service))
        mark = "[green]healthy[/]" if item.ok else "[red]unhealthy[/]"
        table.add_row(item.service, proc_text, f"{rss / 2**20:,.0f} MiB", mark, item.detail)
    console.print(table)
    console.print(f"Resident memory of the whole stack: {sum(memory.values()) / 2**30:.2f} GiB")
    _print_kafka(settings)
    if not all(p.ok for p in probes):
        raise typer.Exit(code=1)


def _print_kafka(settings: Settings) -> None:
    from flightpipe.stack.kafka_status import summary

    kafka = summary(settings)
    brokers = ", ".join(
        f"{b.node} {b.address} " + ("[green]up[/]" if b.up else "[red]down[/]")
        for b in kafka.brokers
    )
    console.print(f"Kafka brokers: {brokers or 'none reachable'}")
    if kafka.partitions:
        colour = "red" if kafka.under_replicated else "green"
        console.print(
            f"Under-replicated partitions: [{colour}]{kafka.under_replicated}[/]"
            f" of {kafka.partitions} (flightpipe topics)"
        )
    if kafka.lags:
        lags = Table(title=f"lag of consumer group {settings.consumer_group}", title_justify="left")
        for column in ("topic", "messages", "lag"):
            lags.add_column(column, justify="left" if column == "topic" else "right")
        for t in kafka.lags:
            lags.add_row(t.topic, f"{t.end:,}", "no commits yet" if t.lag is None else f"{t.lag:,}")
        console.print(lags)
    if kafka.error:
        console.print(f"[yellow]Kafka: {kafka.error}[/]")


@app.command()
def psql() -> None:
    """Open a read-only psql shell on the warehouse (role flightpipe_reader)."""
    settings = get_settings()
    exe = shutil.which("psql")
    if not exe:
        _fail("psql was not found; install postgresql-client.")
        return
    from flightpipe.warehouse.db import psql_environment

    sys.stdout.flush()
    # As the read-only role; the password goes through the environment, never argv.
    os.execve(exe, [exe], {**os.environ, **psql_environment(settings, "reader")})


@app.command()
def password() -> None:
    """Print the generated Airflow admin password."""
    settings = get_settings()
    if not settings.airflow_admin_password:
        _fail("No password yet: run `make up` first.")
    print(settings.airflow_admin_password)


@app.command()
def config(
    markdown: bool = typer.Option(False, "--markdown", help="Print the README's settings table."),
) -> None:
    """Show every setting, its environment variable and its current value (secrets masked)."""
    from flightpipe.settings import settings_markdown, settings_rows

    if markdown:
        print(settings_markdown())
        return
    current = get_settings()
    table = Table(title="flightpipe settings")
    for column in ("environment variable", "value", "meaning"):
        table.add_column(column, overflow="fold")
    for row in settings_rows():
        name = row[0]
        value = getattr(current, Settings.field_for_env(name))
        secret = "password" in name.lower() or name.startswith("FLIGHTPIPE_DATABASE_URL")
        shown = "********" if secret and value else str(value)
        table.add_row(name, shown, row[2])
    console.print(table)


def _mount() -> None:
    """Sub-command groups live next to the code they drive; this is the one place that
    assembles them. Top-level verbs are merged in; the warehouse keeps a group. (The docs
    and the demo video are developer tooling: ``flightpipe-tools``, not installed here.)"""
    from flightpipe.analytics.cli import app as analytics_app
    from flightpipe.dashboard.cli import app as dashboard_app
    from flightpipe.ingest.cli import app as ingest_app
    from flightpipe.ingest.dlq_cli import app as dlq_app
    from flightpipe.live.cli import app as live_app
    from flightpipe.ml.cli import app as ml_app
    from flightpipe.warehouse.cli import app as warehouse_app

    for sub in (ingest_app, analytics_app, ml_app, dashboard_app):
        app.registered_commands.extend(sub.registered_commands)
    app.add_typer(warehouse_app, name="db", help="The warehouse: migrate, load, check.")
    app.add_typer(dlq_app, name="dlq", help="Dead letters: list, show, replay.")
    app.add_typer(live_app, name="live", help="Live mode: paced producers, always-on consumers.")


_mount()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
