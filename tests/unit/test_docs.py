"""The course document: the PDF fits two pages, the generators draw what they are given,
and every command the documents mention exists. No service, Graphviz or Chromium needed.

The committed diagrams are compared with the real DAGs in tests/dags/test_docs_diagrams.py
and with the migrated schema in tests/integration/test_docs_er.py.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from flightpipe_tools.docs import diagrams

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "es"
DIAGRAMS = DOCS / "diagramas"
DOCUMENTS = [ROOT / "README.md", DOCS / "documentacion.md"]
REGENERATE = "out of date: run `make docs` and commit the result"


def test_pdf_is_a4_and_at_most_two_pages() -> None:
    from pypdf import PdfReader

    reader = PdfReader(str(DOCS / "documentacion.pdf"))
    assert 1 <= len(reader.pages) <= 2
    for page in reader.pages:
        width_mm = float(page.mediabox.width) / 72 * 25.4
        height_mm = float(page.mediabox.height) / 72 * 25.4
        assert abs(width_mm - 210) < 2 and abs(height_mm - 297) < 2


def test_document_embeds_every_diagram() -> None:
    text = (DOCS / "documentacion.md").read_text(encoding="utf-8")
    for name in diagrams.DIAGRAMS:
        assert f"diagramas/{name}.svg" in text
        assert (DIAGRAMS / f"{name}.svg").exists(), f"{name}.svg missing: {REGENERATE}"


# --- the generators, on facts made here (the real DAGs: tests/dags/test_docs_diagrams.py) --
def _task(task_id: str, *upstream: str, **kw: Any) -> diagrams.TaskFacts:
    fields = {"mapped": (), "teardown": False, "outlets": (), **kw}
    return diagrams.TaskFacts(task_id, tuple(upstream), **fields)


FACTS = [
    diagrams.DagFacts(
        "flightpipe_ingest", timedelta(minutes=3), (), 1, 2, True,
        (
            _task("produce", mapped=("flights-EWR", "weather")),
            _task("consume", "produce", mapped=("0", "1")),
            _task("publish", "consume", outlets=("flightpipe_landing",)),
            _task("record", "publish", teardown=True),
        ),
    ),
    diagrams.DagFacts(
        "flightpipe_warehouse", None, ("flightpipe_landing",), 1, 2, True,
        (_task("load"),),
    ),
]  # fmt: skip


def _graphviz_checks(text: str, tmp_path: Path) -> None:
    """When Graphviz is installed, the DOT text must also lay out (a syntax check)."""
    if shutil.which("dot"):
        path = tmp_path / "diagram.dot"
        path.write_text(text, encoding="utf-8")
        svg = diagrams.render(path, formats=("svg",))[0]
        assert "<svg" in svg.read_text(encoding="utf-8")


def test_dags_diagram_from_facts(tmp_path: Path) -> None:
    text = diagrams.dags_dot(FACTS)
    assert text.startswith("digraph dags {")
    assert "subgraph cluster_flightpipe_ingest {" in text
    assert '"flightpipe_ingest/produce" [label="produce ×2\\nflights-EWR, weather"' in text
    assert '"flightpipe_ingest/produce" -> "flightpipe_ingest/consume"' in text
    assert '"trigger/flightpipe_ingest" -> "flightpipe_ingest/produce"' in text
    # The Asset edge crosses from the task that updates it to the DAG it triggers.
    assert '"flightpipe_ingest/publish" -> "trigger/flightpipe_warehouse"' in text
    assert "(teardown)" in text and "retries=2, backoff exponencial" in text
    assert text == diagrams.dags_dot(list(reversed(FACTS))), "output depends on input order"
    _graphviz_checks(text, tmp_path)


def test_er_diagram_from_tables(tmp_path: Path) -> None:
    col = diagrams.Column
    tables = [
        diagrams.Table(
            "dw", "dim_airport", (col("airport_key", "int4", True, True, False, False),)
        ),
        diagrams.Table(
            "dw", "fact_flight",
            (
                col("flight_key", "int8", True, True, False, False),
                col("origin_airport_key", "int4", False, False, True, False),
            ),
        ),
    ]  # fmt: skip
    fks = [
        diagrams.ForeignKey(
            "dw", "fact_flight", ("origin_airport_key",), "dw", "dim_airport", ("airport_key",)
        )
    ]
    text = diagrams.er_dot(tables, fks)
    assert "subgraph cluster_dw {" in text
    assert '"dw/fact_flight" [label=<<TABLE' in text
    assert 'PORT="c_origin_airport_key"' in text and "int4?" in text
    assert '"dw/dim_airport":c_airport_key:e -> "dw/fact_flight":c_origin_airport_key:w' in text
    _graphviz_checks(text, tmp_path)


# --- every command the documents mention exists -------------------------------------------
def _snippets(text: str) -> list[str]:
    """Code spans and lines of fenced code blocks: where commands are written."""
    snippets: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            snippets.append(line)
        else:
            # `flightpipe up` / `down` / `status`: the later spans are sibling commands.
            spans = re.findall(r"`([^`]+)`", line)
            snippets.extend(_expand_siblings(line, spans))
    return snippets


def _expand_siblings(line: str, spans: list[str]) -> list[str]:
    out: list[str] = []
    prefix: list[str] | None = None
    for span in spans:
        words = span.split()
        if words and words[0] in ("flightpipe", "make"):
            prefix = words[:-1]
            out.append(span)
        elif (
            prefix is not None
            and re.fullmatch(r"[a-z][a-z0-9-]*", span)
            and (f"/ `{span}`" in line)
        ):
            out.append(" ".join([*prefix, span]))
        else:
            out.append(span)
    return out


def _make_targets() -> set[str]:
    targets: set[str] = set()
    for makefile in [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]:
        for line in makefile.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^([a-z][\w-]*)\s*:(?!=)", line)
            if m:
                targets.add(m.group(1))
    return targets


def _cli(prog: str) -> Any:
    from flightpipe.cli import app
    from flightpipe_tools.cli import app as tools_app

    return typer.main.get_command({"flightpipe": app, "flightpipe-tools": tools_app}[prog])


def _resolves(command: Any, words: list[str]) -> bool:
    # Duck-typed: recent Typer versions ship their own copy of Click's classes.
    node = command
    for word in words:
        if not hasattr(node, "commands"):
            return True  # the rest are arguments of a leaf command
        sub = node.commands.get(word)
        if sub is None:
            return False
        node = sub
    return True


def _mentioned(pattern: str) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for doc in DOCUMENTS:
        for snippet in _snippets(doc.read_text(encoding="utf-8")):
            for m in re.finditer(pattern, snippet):
                words = re.findall(r"[a-z][a-z0-9-]*", m.group(1))
                found.setdefault(doc.name, []).append(words)
    return found


def test_make_targets_mentioned_exist() -> None:
    targets = _make_targets()
    mentioned = _mentioned(r"\bmake\s+([a-z][\w-]*)")
    assert mentioned, "no `make` command found in the documents: the parser broke"
    missing = {
        f"{doc}: make {words[0]}"
        for doc, uses in mentioned.items()
        for words in uses
        if words[0] not in targets
    }
    assert not missing, f"documented but not in the Makefile: {sorted(missing)}"


def test_cli_commands_mentioned_exist() -> None:
    missing = set()
    for prog in ("flightpipe", "flightpipe-tools"):
        cli = _cli(prog)
        # Words up to the first option, argument or placeholder; siblings may be top-level.
        mentioned = _mentioned(rf"\b{prog}((?:\s+[a-z][a-z0-9-]*)+)")
        for doc, uses in mentioned.items():
            for words in uses:
                if not (_resolves(cli, words) or _resolves(cli, words[-1:])):
                    missing.add(f"{doc}: {prog} {' '.join(words)}")
    assert not missing, f"documented but not in the CLI: {sorted(missing)}"
