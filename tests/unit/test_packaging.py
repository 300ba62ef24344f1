"""The runtime package stands alone: it imports neither the developer tooling nor Airflow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "flightpipe"
FORBIDDEN = ("flightpipe_tools", "airflow")


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_no_runtime_module_imports_tooling_or_airflow() -> None:
    offenders = sorted(
        f"{path.relative_to(RUNTIME)}: {module}"
        for path in RUNTIME.rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    )
    assert not offenders, offenders


def test_the_command_line_loads_without_the_tooling() -> None:
    # Every sub-command group is mounted at import; none may pull the tooling in.
    code = (
        "import sys, flightpipe.cli;"
        "print(sorted(m for m in sys.modules if m.startswith('flightpipe_tools')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_pipeline_never_needs_the_local_installer() -> None:
    # flightpipe.stack starts local services for `make up`; a cluster that runs the pipeline
    # against its own Kafka, PostgreSQL and Dask never executes it. Only the command line
    # (its up/down/status verbs) may import it.
    offenders = sorted(
        f"{path.relative_to(RUNTIME)}: {module}"
        for path in RUNTIME.rglob("*.py")
        if path != RUNTIME / "cli.py" and "stack" not in path.relative_to(RUNTIME).parts
        for module in _imported_modules(path)
        if module.startswith("flightpipe.stack")
    )
    assert not offenders, offenders
