"""`flightpipe dashboard` (merged into the main CLI)."""

from __future__ import annotations

import typer
from rich.console import Console

from flightpipe.settings import get_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def dashboard(
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port on 127.0.0.1 (default: FLIGHTPIPE_DASHBOARD_PORT)."
    ),
) -> None:
    """Serve the live dashboard of the warehouse on 127.0.0.1 until stopped (`make up` runs
    it under supervision)."""
    from flightpipe.dashboard.app import serve

    settings = get_settings()
    chosen = settings.dashboard_port if port is None else port
    console.print(
        f"dashboard on http://127.0.0.1:{chosen} (refresh every {settings.dashboard_refresh:g} s)"
    )
    serve(settings, chosen)
