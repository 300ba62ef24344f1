"""``flightpipe-tools``: the developer commands (docs and demo video) in one command line.

Kept apart from ``flightpipe``: a pipeline host installs the runtime package only.
"""

from __future__ import annotations

import typer

from flightpipe.cli_support import OneLineErrors
from flightpipe_tools.demo.cli import app as demo_app
from flightpipe_tools.docs.cli import app as docs_app

app = typer.Typer(
    help="flightpipe developer tools: generated docs and the demo video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
app.add_typer(docs_app, name="docs", help="Diagrams and the Spanish PDF.")
app.add_typer(demo_app, name="demo", help="Record the demo video of a real run.")


if __name__ == "__main__":
    app()
