"""Bad command-line input gets one line that says what to do, never a traceback.

The commands are found by walking the command trees of ``flightpipe`` and
``flightpipe-tools``, so a command added later is covered without touching this file. No
command body runs: ``TyperCommand.invoke`` is replaced by one that fails the test, so a bad
value that slipped through parsing shows up as such instead of starting real work.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperCommand
from typer.testing import CliRunner

from flightpipe.cli import app as runtime_app
from flightpipe.cli_support import DATA_YEAR
from flightpipe_tools.cli import app as tools_app

APPS = {"flightpipe": runtime_app, "flightpipe-tools": tools_app}
ROOT = Path(__file__).resolve().parents[2]


class CommandRan(Exception):
    """A command body was reached: parsing accepted the input."""


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    # Duck-typed: Typer ships its own copy of Click's classes.
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


def _tree() -> list[tuple[str, tuple[str, ...], Any]]:
    found = []
    for prog, app in APPS.items():
        for path, command in _walk(typer.main.get_command(app), ()):
            found.append((prog, path, command))
    return found


def _info(param: Any, name: str) -> Any:
    """A declared property of a Typer parameter (``file_okay``, ``exists`` ...)."""
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(getattr(descriptor, "parameter_info", None), name, None)


def _annotation(param: Any) -> Any:
    return getattr(getattr(param, "type_descriptor", None), "annotation", str)


def _type_errors(param: Any, tmp: Path) -> list[str]:
    """Values of ``param`` that its declared type, range or path kind must refuse."""
    kind = _annotation(param)
    bad: list[str] = []
    if kind in (int, float):
        bad.append("not-a-number")
        if param.min is not None:
            bad.append(str(param.min - 1))
        if param.max is not None:
            bad.append(str(param.max + 1))
    elif kind.__name__ == "datetime":
        bad += [f"{DATA_YEAR}-13-45", "yesterday"]
    elif kind is Path:
        if _info(param, "file_okay") is False:
            bad.append(str(tmp / "a-file"))
        if _info(param, "dir_okay") is False:
            bad.append(str(tmp))
        if _info(param, "exists"):
            bad.append(str(tmp / "missing"))
    return bad


def _good(param: Any) -> str:
    """A value every parameter of this type accepts (fills earlier positional slots)."""
    kind = _annotation(param)
    if kind in (int, float):
        return str(param.min if param.min is not None else 1)
    if getattr(kind, "__name__", "") == "datetime":
        return f"{DATA_YEAR}-06-01"
    return "x"


def _bad_inputs(command: Any, tmp: Path) -> Iterator[list[str]]:
    yield ["--no-such-option"]
    if hasattr(command, "commands"):
        yield ["no-such-command"]
        return
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    filled = [_good(p) for p in arguments]
    if not arguments:
        yield ["unexpected-extra-argument"]
    for index, param in enumerate(arguments):
        for value in _type_errors(param, tmp):
            yield [*filled[:index], value, *filled[index + 1 :]]
    for param in command.params:
        if param.param_type_name != "option":
            continue
        flag = param.opts[0]
        if param.is_flag:
            if flag.startswith("--"):
                yield [*filled, f"{flag}=maybe"]
            continue
        yield [*filled, flag]  # the value is missing
        for value in _type_errors(param, tmp):
            yield [*filled, flag, value]


def _cases(tmp: Path) -> list[tuple[str, list[str]]]:
    cases = []
    for prog, path, command in _tree():
        for bad in _bad_inputs(command, tmp):
            cases.append((prog, [*path, *bad]))
    return cases


@pytest.fixture
def no_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, ctx: Any) -> None:
        raise CommandRan(f"{ctx.command_path} ran with {ctx.params}")

    monkeypatch.setattr(TyperCommand, "invoke", refuse)


def test_the_walk_finds_every_command() -> None:
    paths = {(prog, " ".join(path)) for prog, path, _ in _tree()}
    for expected in ("ingest", "produce", "consume", "db migrate", "report", "train", "up"):
        assert ("flightpipe", expected) in paths
    assert ("flightpipe-tools", "docs build") in paths
    assert ("flightpipe-tools", "demo record") in paths
    # The tooling is not part of the runtime command line.
    assert not any(
        prog == "flightpipe" and p.split()[:1] in (["docs"], ["demo"]) for prog, p in paths
    )


def test_bad_input_is_one_line_without_traceback(no_command_runs: None, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    runner = CliRunner()
    cases = _cases(tmp_path)
    assert len(cases) > 60, "the command walk found too little"
    failures = []
    for prog, args in cases:
        result = runner.invoke(APPS[prog], args, prog_name=prog)
        lines = result.output.strip().splitlines()
        problem = None
        if isinstance(result.exception, CommandRan):
            problem = f"accepted: {result.exception}"
        elif result.exception is not None and not isinstance(result.exception, SystemExit):
            problem = f"raised {result.exception!r}"
        elif result.exit_code == 0:
            problem = "exit code 0"
        elif "Traceback" in result.output:
            problem = "printed a traceback"
        elif len(lines) != 1 or not lines[0].startswith("error: "):
            problem = f"not one 'error:' line: {result.output!r}"
        if problem:
            failures.append(f"{prog} {' '.join(args)}: {problem}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ingest", "--start", "2013-13-45"], "does not match the format"),
        (["ingest", "--start", "2014-01-01"], "give a day from 2013-01-01 to 2013-12-31"),
        (["produce", "--role", "flights-XYZ"], "is not one of: flights-EWR"),
        (["produce", "--speed", "0"], "is not above 0"),
        (["report", "--run-id", "../outside"], "is not a plain folder name"),
        (["consume", "--until", "{not json"], "not a JSON object"),
        (["train", "--seed", "-1"], "--seed"),
    ],
)
def test_checks_inside_callbacks_explain_the_fix(
    no_command_runs: None, args: list[str], expected: str
) -> None:
    result = CliRunner().invoke(runtime_app, args, prog_name="flightpipe")
    assert result.exit_code == 2
    assert expected in result.output
    assert f"(see `flightpipe {args[0]} --help`)" in result.output


def test_good_input_still_reaches_the_command(no_command_runs: None) -> None:
    result = CliRunner().invoke(runtime_app, ["ingest", "--start", "2013-06-01", "--days", "2"])
    assert isinstance(result.exception, CommandRan)
    assert "'days': 2" in str(result.exception)


def test_data_year_is_the_source_year() -> None:
    from flightpipe.replay import YEAR

    assert DATA_YEAR == YEAR


def test_installed_entry_point_prints_one_line() -> None:
    # The real console script: sys.argv, stderr and the exit code as a user sees them.
    exe = Path(sys.executable).with_name("flightpipe")
    result = subprocess.run(
        [str(exe), "ingest", "--start", "2013-13-45"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: Invalid value for '--start'")
