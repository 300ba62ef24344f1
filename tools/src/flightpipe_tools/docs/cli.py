"""``flightpipe-tools docs ...``: regenerate the diagrams and the two-page PDF."""

from __future__ import annotations

from pathlib import Path

import typer

from flightpipe.cli_support import OneLineErrors
from flightpipe.settings import Settings
from flightpipe.warehouse.db import scratch_database
from flightpipe_tools.docs import diagrams

app = typer.Typer(
    help="Documentation: diagrams generated from the code, and the 2-page PDF (docs/es).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,  # `python -m flightpipe_tools.docs.cli` runs this app directly
)

MAX_PAGES = 2


def generate_dots(settings: Settings, *, er: bool = True) -> dict[str, str]:
    """DOT text of every diagram (``er`` needs the warehouse's PostgreSQL server)."""
    facts = diagrams.load_dag_facts(settings)
    texts = {
        "componentes": diagrams.component_dot(facts, diagrams.documented_settings()),
        "dags": diagrams.dags_dot(facts),
    }
    if er:
        with scratch_database(settings, "flightpipe_docs") as scratch:
            texts["er"] = diagrams.er_dot_from(scratch.warehouse_dsn)
    return texts


def _write_and_render(settings: Settings, *, er: bool, render: bool) -> list[Path]:
    folder = diagrams.diagrams_dir(settings)
    written = []
    for name, text in generate_dots(settings, er=er).items():
        path = folder / f"{name}.dot"
        changed = diagrams.write_dot(path, text)
        typer.echo(f"{'wrote' if changed else 'unchanged'} {path.relative_to(settings.home)}")
        written.append(path)
    if render:
        for name in diagrams.DIAGRAMS:
            dot_file = folder / f"{name}.dot"
            if dot_file.exists():
                for out in diagrams.render(dot_file):
                    typer.echo(f"rendered {out.relative_to(settings.home)}")
    return written


def _pdf(settings: Settings) -> None:
    from flightpipe_tools.docs import pdf

    folder = diagrams.docs_dir(settings)
    target = pdf.build_pdf(folder / "documentacion.md", folder / "documentacion.pdf")
    pages = pdf.page_count(target)
    typer.echo(f"wrote {target.relative_to(settings.home)}: {pages} A4 page(s)")
    if pages > MAX_PAGES:
        typer.echo(f"error: the document must fit in {MAX_PAGES} pages", err=True)
        raise typer.Exit(code=1)


@app.command()
def build(
    er: bool = typer.Option(
        True, help="Regenerate the ER diagram from PostgreSQL (--no-er keeps er.dot)."
    ),
) -> None:
    """Regenerate every diagram (DOT, SVG, PNG) and documentacion.pdf."""
    settings = Settings()
    _write_and_render(settings, er=er, render=True)
    _pdf(settings)


@app.command("diagrams")
def diagrams_command(
    er: bool = typer.Option(True, help="Regenerate the ER diagram from PostgreSQL."),
    render: bool = typer.Option(True, help="Render SVG and PNG with Graphviz."),
) -> None:
    """Regenerate the DOT files of the diagrams (and render them)."""
    _write_and_render(Settings(), er=er, render=render)


@app.command("pdf")
def pdf_command() -> None:
    """Print docs/es/documentacion.md to documentacion.pdf (A4, at most 2 pages)."""
    _pdf(Settings())


if __name__ == "__main__":
    app()
