"""Pieces of the stack that need no running service."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from flightpipe.settings import Settings
from flightpipe.stack import services, supervisor
from flightpipe.stack.errors import StackError
from flightpipe.stack.ports import require_free
from flightpipe.stack.secrets import GENERATED_KEYS, ensure_secrets


def test_secrets_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "run" / "secrets.env"
    first = ensure_secrets(path)
    assert set(GENERATED_KEYS) <= set(first)
    assert len(set(first.values())) == len(first), "every secret is distinct"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secrets(path) == first, "a second call keeps every value"


def test_port_clash_names_the_port_and_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"Port {port} for kafka .*FLIGHTPIPE_X=<port>"):
            require_free(port, "kafka", "FLIGHTPIPE_X")


def test_supervisor_config_covers_every_local_service(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, airflow_admin_password="x")
    progs = services.programs(settings, {"AIRFLOW_HOME": str(tmp_path / "airflow")})
    names = [p.name for p in progs]
    assert names == [
        "postgres",
        "kafka",
        "dask-scheduler",
        "dask-worker-1",
        "dask-worker-2",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "dashboard",
    ]
    text = supervisor.render(settings, progs)
    assert text.count("[program:") == len(names)
    assert "autostart=false" in text and "-Xmx768m" in text
    assert "--host 127.0.0.1" in text


def test_external_services_are_not_started(tmp_path: Path) -> None:
    settings = Settings(
        run_dir=tmp_path,
        kafka_bootstrap="127.0.0.9:9092",
        database_url="postgresql://u:p@127.0.0.9/w",
        dask_scheduler="tcp://127.0.0.9:8786",
        airflow_url="http://127.0.0.9:8080",
    )
    # Only the dashboard, which reads whichever services the settings name.
    assert [p.name for p in services.programs(settings, {})] == ["dashboard"]
