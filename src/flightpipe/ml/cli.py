"""`flightpipe train` and `flightpipe predict` (merged into the main CLI with add_typer)."""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.table import Table

from flightpipe.settings import get_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def train(
    max_train_rows: int = typer.Option(150_000, min=1, help="Cap on training rows (sampled)."),
    # NumPy and scikit-learn take seeds in [0, 2**32).
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed of the sample and the models."),
) -> None:
    """Train the arrival-delay models on the warehouse and register them in ml.model_runs."""
    from flightpipe.ml.train import NotEnoughDataError
    from flightpipe.ml.train import train as run_training

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run_training(get_settings(), max_train_rows=max_train_rows, seed=seed)
    except NotEnoughDataError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from exc
    table = Table(title=f"training {result.training_id} ({result.seconds:.1f} s)")
    for column in ("model run", "algorithm", "ROC AUC", "PR AUC", "Brier"):
        table.add_column(column)
    table.add_row(
        "-",
        "prior (baseline)",
        f"{result.baseline['roc_auc']:.3f}",
        f"{result.baseline['pr_auc']:.3f}",
        f"{result.baseline['brier']:.4f}",
    )
    for run in result.runs:
        mark = " (serving)" if run.model_run_id == result.serving_model_run_id else ""
        table.add_row(
            str(run.model_run_id),
            run.algorithm.rsplit(".", 1)[-1] + mark,
            f"{run.metrics['roc_auc']:.3f}",
            f"{run.metrics['pr_auc']:.3f}",
            f"{run.metrics['brier']:.4f}",
        )
    console.print(table)


@app.command()
def predict() -> None:
    """Score the flights the serving model has not scored yet into ml.predictions."""
    from flightpipe.ml.predict import NoModelError
    from flightpipe.ml.predict import predict as run_prediction

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        added = run_prediction(get_settings())
    except NoModelError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from exc
    console.print(f"[green]{added}[/] flights scored")
