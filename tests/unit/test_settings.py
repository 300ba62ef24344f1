"""Settings: one object, env-driven, documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightpipe.settings import Settings, settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    start, end = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
    block = text.split(start)[1].split(end)[0].strip()
    assert block == settings_markdown(), (
        "README settings table is stale: regenerate it with `flightpipe config --markdown`"
    )


def test_env_points_at_external_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIGHTPIPE_KAFKA_BOOTSTRAP", "127.0.0.9:9092")
    monkeypatch.setenv("FLIGHTPIPE_DATABASE_URL", "postgresql://u:p@127.0.0.9:5432/w")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.9:8786")
    s = Settings()
    assert (s.local_kafka, s.local_postgres, s.local_dask) == (False, False, False)
    assert s.kafka_bootstrap == "127.0.0.9:9092"
    assert s.warehouse_dsn == "postgresql://u:p@127.0.0.9:5432/w"
    assert s.dask_address == "tcp://127.0.0.9:8786"


def test_defaults_are_local(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FLIGHTPIPE_KAFKA_BOOTSTRAP", "FLIGHTPIPE_DATABASE_URL", "DASK_SCHEDULER_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    s = Settings(warehouse_password="pw")
    assert (s.local_kafka, s.local_postgres, s.local_dask) == (True, True, True)
    assert s.warehouse_dsn == f"postgresql://flightpipe:pw@127.0.0.1:{s.pg_port}/warehouse"
    assert s.topic("flights") == "flights"
    assert Settings(topic_prefix="t1-").topic("flights") == "t1-flights"
