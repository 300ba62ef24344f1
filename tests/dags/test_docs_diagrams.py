"""The committed diagrams of the DAGs and the data flow match the DAGs as Airflow reads them.

Compared as DOT text, so neither Graphviz nor a browser is needed; when one fails,
`make docs` regenerates the diagrams and the PDF.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flightpipe.settings import Settings
from flightpipe_tools.docs import diagrams

DIAGRAMS = Path(__file__).resolve().parents[2] / "docs" / "es" / "diagramas"
REGENERATE = "out of date: run `make docs` and commit the result"


@pytest.fixture(scope="module")
def dag_facts() -> list[diagrams.DagFacts]:
    return diagrams.load_dag_facts(Settings())


def _committed(name: str) -> str:
    return (DIAGRAMS / f"{name}.dot").read_text(encoding="utf-8")


def test_dag_diagram_matches_the_dags(dag_facts: list[diagrams.DagFacts]) -> None:
    assert diagrams.dags_dot(dag_facts) == _committed("dags"), f"dags.dot {REGENERATE}"


def test_component_diagram_matches_the_code(dag_facts: list[diagrams.DagFacts]) -> None:
    text = diagrams.component_dot(dag_facts, diagrams.documented_settings())
    assert text == _committed("componentes"), f"componentes.dot {REGENERATE}"


def test_dag_diagram_shows_the_asset_chain(dag_facts: list[diagrams.DagFacts]) -> None:
    # Guards the generator itself: every DAG, every task and both Assets appear.
    text = diagrams.dags_dot(dag_facts)
    for dag in dag_facts:
        assert f"subgraph cluster_{dag.dag_id} {{" in text
        for task in dag.tasks:
            assert f'"{dag.dag_id}/{task.task_id}"' in text
    assert "flightpipe_landing" in text and "flightpipe_warehouse" in text
    assert text == diagrams.dags_dot(list(reversed(dag_facts))), "output depends on input order"
