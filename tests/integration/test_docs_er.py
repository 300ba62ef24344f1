"""The committed ER diagram matches the schema the migrations build in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightpipe.settings import Settings
from flightpipe.warehouse.db import scratch_database
from flightpipe_tools.docs import diagrams

ER_DOT = Path(__file__).resolve().parents[2] / "docs" / "es" / "diagramas" / "er.dot"

pytestmark = pytest.mark.services


def test_er_diagram_matches_the_migrated_schema(stack: Settings) -> None:
    with scratch_database(stack, "flightpipe_docs") as scratch:
        text = diagrams.er_dot_from(scratch.warehouse_dsn)
    assert text == ER_DOT.read_text(encoding="utf-8"), (
        "er.dot out of date: run `make docs` and commit the result"
    )
    for table in ("dw.fact_flight", "dw.dim_airport", "ml.predictions", "meta.load_batches"):
        assert table in text
