"""``flightpipe-tools demo ...``: record the demo video of a real pipeline run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flightpipe.cli_support import OneLineErrors
from flightpipe.settings import Settings

app = typer.Typer(
    help="The demo video (docs/demo/flightpipe-demo.mp4) of a real pipeline run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,  # `python -m flightpipe_tools.demo.cli` runs this app directly
)


@app.callback()
def demo() -> None:
    """The demo video: a screen capture of the stack in live mode (`make video` starts it)."""


@app.command()
def record(
    output: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="MP4 to write (default docs/demo/flightpipe-demo.mp4); .srt next to it.",
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Folder for the README screenshots (default docs/img)."),
    ] = None,
    no_images: bool = typer.Option(False, "--no-images", help="Do not write the screenshots."),
    timeout_minutes: float = typer.Option(
        20.0, min=1.0, help="Give up (with an error) after this many minutes."
    ),
    keep_frames: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="Also copy every screenshot and frame into this folder."
        ),
    ] = None,
) -> None:
    """Screen-record the live stack: dashboard, Airflow, Dask, psql and the report (≤ 2 min)."""
    from flightpipe_tools.demo.video import DemoError, DemoOptions, record_demo

    settings = Settings()
    options = DemoOptions(
        output=output or settings.home / "docs" / "demo" / "flightpipe-demo.mp4",
        images_dir=None if no_images else images or settings.home / "docs" / "img",
        timeout_minutes=timeout_minutes,
        keep_frames=keep_frames,
    )
    try:
        result = record_demo(settings, options, log=typer.echo)
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(
        f"wrote {result.video} ({result.seconds:.1f} s, {result.size_bytes / 1e6:.2f} MB,"
        f" {result.scenes} scenes) and {result.captions.name}"
    )
    for image in result.images:
        typer.echo(f"wrote {image} ({image.stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    app()
