"""The course document: the PDF fits two pages, the diagrams match the code, commands exist.

Diagrams are compared as DOT text, so these tests need neither Graphviz nor Chromium; when
one fails, `make docs` regenerates the diagrams and the PDF.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from flightpipe.docs import diagrams
from flightpipe.settings import Settings
from flightpipe.warehouse.db import scratch_database

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "es"
DIAGRAMS = DOCS / "diagramas"
DOCUMENTS = [ROOT / "README.md", DOCS / "documentacion.md"]
REGENERATE = "out of date: run `make docs` and commit the result"


@pytest.fixture(scope="module")
def dag_facts() -> list[diagrams.DagFacts]:
    return diagrams.load_dag_facts(Settings())


def _committed(name: str) -> str:
    return (DIAGRAMS / f"{name}.dot").read_text(encoding="utf-8")


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


def test_dag_diagram_matches_the_dags(dag_facts: list[diagrams.DagFacts]) -> None:
    assert diagrams.dags_dot(dag_facts) == _committed("dags"), f"dags.dot {REGENERATE}"


def test_component_diagram_matches_the_code(dag_facts: list[diagrams.DagFacts]) -> None:
    text = diagrams.component_dot(dag_facts, diagrams.documented_settings())
    assert text == _committed("componentes"), f"componentes.dot {REGENERATE}"


def test_dag_diagram_shows_the_asset_chain(dag_facts: list[diagrams.DagFacts]) -> None:
    # Guards the generator itself: every DAG, every task and both Assets appear.
    text = diagrams.dags_dot(dag_facts)
    for dag in dag_facts:
        assert f'"cluster_{dag.dag_id}"' in text
        for task in dag.tasks:
            assert f'"{dag.dag_id}/{task.task_id}"' in text
    assert "flightpipe_landing" in text and "flightpipe_warehouse" in text
    assert text == diagrams.dags_dot(list(reversed(dag_facts))), "output depends on input order"


@pytest.mark.services
def test_er_diagram_matches_the_migrated_schema(stack: Settings) -> None:
    with scratch_database(stack, "flightpipe_docs") as scratch:
        text = diagrams.er_dot_from(scratch.warehouse_dsn)
    assert text == _committed("er"), f"er.dot {REGENERATE}"
    for table in ("dw.fact_flight", "dw.dim_airport", "ml.predictions", "meta.load_batches"):
        assert table in text


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


def _cli() -> Any:
    from flightpipe.cli import app

    return typer.main.get_command(app)


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
    cli = _cli()
    # Words up to the first option, argument or placeholder; siblings may be top-level.
    mentioned = _mentioned(r"\bflightpipe((?:\s+[a-z][a-z0-9-]*)+)")
    missing = set()
    for doc, uses in mentioned.items():
        for words in uses:
            if not (_resolves(cli, words) or _resolves(cli, words[-1:])):
                missing.add(f"{doc}: flightpipe {' '.join(words)}")
    assert not missing, f"documented but not in the CLI: {sorted(missing)}"
