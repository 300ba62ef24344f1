"""Shared fixtures: the real services, started on demand, and Airflow's environment.

Tests marked ``services`` use the stack that `make up` runs; when it is not healthy the
session starts it (the same code path as `make up`), so `make test` works on its own.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from flightpipe.settings import SECRETS_FILE, Settings


def _airflow_environment() -> None:
    # Airflow reads its configuration at import time, so the environment of the local
    # deployment must be in place before any test imports it.
    from flightpipe.stack.airflow_env import environment
    from flightpipe.stack.secrets import ensure_secrets

    settings = Settings()
    for key, value in environment(settings, ensure_secrets(SECRETS_FILE)).items():
        os.environ.setdefault(key, value)


def pytest_configure(config: pytest.Config) -> None:
    _airflow_environment()
    # The DAG processor puts the DAGs folder on sys.path (for flightpipe_common); so do we.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dags"))


@pytest.fixture(scope="session")
def stack() -> Settings:
    """A healthy local stack; started if needed. Returns the settings that reach it."""
    from flightpipe.stack import health
    from flightpipe.stack import up as stack_up

    settings = Settings()
    if not all(h.ok for h in health.check_all(settings)):
        stack_up.up(log=print)
        settings = Settings()
    return settings


@pytest.fixture
def unique() -> str:
    """A short unique token for names (topics, groups, databases) of one test."""
    return uuid.uuid4().hex[:10]
