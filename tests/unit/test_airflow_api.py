"""The Airflow API facade and its two logins, against a small local HTTP server: the real
client library end to end (login, bearer token, timeouts, errors), no Airflow needed."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flightpipe.orchestration.airflow_api import RETRIES, AirflowApi, AirflowApiError
from flightpipe.orchestration.timings import record_task_runs
from flightpipe.settings import Settings
from flightpipe.stack import airflow_env
from flightpipe.stack.errors import StackError
from flightpipe.stack.secrets import ensure_secrets

PASSWORDS = {"admin": "admin-pw", "flightpipe-timings": "reader-pw"}
ROLES = {"admin": "admin", "flightpipe-timings": "viewer"}
STAMP = "2013-01-01T00:00:00Z"


def _dag(dag_id: str) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "dag_display_name": dag_id,
        "file_token": "t",
        "fileloc": f"/dags/{dag_id}.py",
        "has_import_errors": False,
        "has_task_concurrency_limits": False,
        "is_backfillable": False,
        "is_paused": True,
        "is_stale": False,
        "max_active_tasks": 4,
        "max_consecutive_failed_dag_runs": 0,
        "owners": ["flightpipe"],
        "tags": [],
        "timetable_partitioned": False,
        "timetable_periodic": False,
    }


def _run(dag_id: str, run_id: str, state: str) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "dag_display_name": dag_id,
        "dag_run_id": run_id,
        "dag_versions": [],
        "run_after": STAMP,
        "run_type": "manual",
        "state": state,
        "end_date": None,
    }


def _ti(dag_id: str, run_id: str, task_id: str, end: str | None) -> dict[str, Any]:
    return {
        "id": "0190a3c2-6c1e-7b7e-8d2f-3a4b5c6d7e8f",
        "dag_id": dag_id,
        "dag_display_name": dag_id,
        "dag_run_id": run_id,
        "task_id": task_id,
        "task_display_name": task_id,
        "executor_config": "{}",
        "map_index": -1,
        "max_tries": 2,
        "pool": "default_pool",
        "pool_slots": 1,
        "run_after": STAMP,
        "try_number": 1,
        "state": "success" if end else "running",
        "start_date": STAMP,
        "end_date": end,
    }


@dataclass
class FakeAirflow:
    """What the server saw, and how it should answer."""

    base: str = ""
    delay: float = 0.0
    run_state: str = "success"
    ti_end: str | None = STAMP
    seen: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def role_of(self, authorization: str | None) -> str | None:
        user = self.tokens.get((authorization or "").removeprefix("Bearer "))
        return ROLES.get(user) if user else None

    def answer(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        if path == "/auth/token" and method == "POST":
            user = body.get("username")
            if PASSWORDS.get(user) != body.get("password"):
                return 401, {"detail": "Invalid credentials"}
            token = f"token-{len(self.tokens)}"
            self.tokens[token] = user
            return 201, {"access_token": token}
        role = self.role_of(auth)
        if role is None:
            return 401, {"detail": "Not authenticated"}
        time.sleep(self.delay)
        if method != "GET" and role == "viewer":
            return 403, {"detail": "Forbidden"}
        if path == "/api/v2/broken":
            return 500, "Internal\nServer Error"
        if path.startswith("/api/v2/dags?"):
            dags = [_dag("flightpipe_ingest"), _dag("flightpipe_load")]
            return 200, {"dags": dags, "total_entries": len(dags)}
        if m := re.fullmatch(r"/api/v2/dags/([^/]+)/dagRuns/([^/]+)/taskInstances\?.*", path):
            tis = [_ti(m.group(1), m.group(2), "produce", self.ti_end)]
            return 200, {"task_instances": tis, "total_entries": 1}
        if m := re.fullmatch(r"/api/v2/dags/([^/]+)/dagRuns/([^/?]+)", path):
            return 200, _run(m.group(1), m.group(2), self.run_state)
        if m := re.fullmatch(r"/api/v2/dags/([^/]+)/dagRuns", path):
            return 200, _run(m.group(1), "manual__1", "queued")
        return 404, {"detail": "Not Found"}


def _handler(fake: FakeAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be seen

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization")
            port = self.client_address[1]
            fake.seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "auth": auth,
                    "port": port,
                }
            )
            status, answer = fake.answer(self.command, self.path, body, auth)
            data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout test)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeAirflow]:
    state = FakeAirflow()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _settings(fake: FakeAirflow, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "airflow_url": fake.base,
        "airflow_admin_password": PASSWORDS["admin"],
        "airflow_reader_password": PASSWORDS["flightpipe-timings"],
        "run_dir": tmp_path,
    }
    return Settings(**{**values, **overrides})


# --- the two logins in the deployment's configuration -----------------------------------------
def test_users_and_passwords_file_hold_both_logins_with_their_roles(tmp_path: Path) -> None:
    settings = Settings(
        run_dir=tmp_path, airflow_admin_password="a-pw", airflow_reader_password="r-pw"
    )
    keys = ("AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET")
    env = airflow_env.environment(settings, dict.fromkeys(keys, "k"))
    users = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert users == "admin:admin,flightpipe-timings:viewer"
    airflow_env.write_passwords_file(settings)
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert json.loads(path.read_text()) == {"admin": "a-pw", "flightpipe-timings": "r-pw"}
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("reader", ["admin", "a:b", "a,b", ""])
def test_login_names_that_would_break_the_users_setting_are_refused(reader: str) -> None:
    with pytest.raises(StackError, match="Airflow"):
        airflow_env.auth_manager_users(Settings(airflow_reader_user=reader))


def test_the_reader_password_is_generated_and_read_as_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    generated = ensure_secrets(path)["FLIGHTPIPE_AIRFLOW_READER_PASSWORD"]
    assert len(generated) >= 24
    settings = Settings(_env_file=path)
    assert settings.airflow_reader_password == generated
    assert settings.airflow_reader_password != settings.airflow_admin_password


# --- the facade ----------------------------------------------------------------------------
def test_facade_configuration_is_built_without_calling_out(tmp_path: Path) -> None:
    settings = Settings(airflow_url="http://127.0.0.9:1", run_dir=tmp_path)
    api = AirflowApi(settings, timeout=5)
    assert api.configuration.host == "http://127.0.0.9:1"
    assert api.configuration.access_token is None, "the login waits for the first call"
    assert api.timeout == 5.0 and isinstance(api.timeout, float)
    assert api.configuration.retries is RETRIES
    assert RETRIES.read == 0 and RETRIES.status == 0, "a sent request is never repeated"
    assert api.client.rest_client.pool_manager is not None


def test_login_once_then_bearer_reads_over_one_connection(
    fake: FakeAirflow, tmp_path: Path
) -> None:
    with AirflowApi(_settings(fake, tmp_path), timeout=5) as api:
        assert api.dag_ids() == {"flightpipe_ingest", "flightpipe_load"}
        run = api.run("flightpipe_ingest", "manual__1")
        tis = api.task_instances("flightpipe_ingest", "manual__1")
    assert (run["state"], run["run_after"], run["end_date"]) == ("success", STAMP, None)
    assert [(ti["task_id"], ti["start_date"], ti["dag_run_id"]) for ti in tis] == [
        ("produce", STAMP, "manual__1")
    ]
    logins = [s for s in fake.seen if s["path"] == "/auth/token"]
    assert [s["body"]["username"] for s in logins] == ["admin"]
    reads = [s for s in fake.seen if s["path"].startswith("/api/v2/")]
    assert len(reads) == 3 and {s["auth"] for s in reads} == {"Bearer token-0"}
    assert "dag_id_pattern=flightpipe" in reads[0]["path"]
    assert len({s["port"] for s in fake.seen}) == 1, "one pooled connection for every call"


def test_reader_login_reads_but_is_refused_a_trigger(fake: FakeAirflow, tmp_path: Path) -> None:
    api = AirflowApi(_settings(fake, tmp_path), identity="reader")
    assert api.run("flightpipe_ingest", "r1")["dag_run_id"] == "r1"
    with pytest.raises(AirflowApiError) as refused:
        api.trigger("flightpipe_ingest")
    assert str(refused.value) == 'trigger flightpipe_ingest -> 403: {"detail": "Forbidden"}'
    assert fake.seen[0]["body"] == {
        "username": "flightpipe-timings",
        "password": PASSWORDS["flightpipe-timings"],
    }


def test_admin_trigger_sends_no_logical_date(fake: FakeAirflow, tmp_path: Path) -> None:
    api = AirflowApi(_settings(fake, tmp_path))
    assert api.trigger("flightpipe_ingest", {"days": 1}) == "manual__1"
    posted = fake.seen[-1]
    assert posted["path"] == "/api/v2/dags/flightpipe_ingest/dagRuns"
    assert posted["body"] == {"conf": {"days": 1}, "logical_date": None}


def test_errors_are_one_line(fake: FakeAirflow, tmp_path: Path) -> None:
    with pytest.raises(AirflowApiError, match=r"^Airflow login as 'admin' failed: .*401") as bad:
        AirflowApi(_settings(fake, tmp_path, airflow_admin_password="wrong")).dag_ids()
    assert "\n" not in str(bad.value)
    with pytest.raises(AirflowApiError, match=r"^GET /api/v2/nowhere -> 404"):
        AirflowApi(_settings(fake, tmp_path)).request("GET", "/nowhere")
    with pytest.raises(AirflowApiError) as broken:
        AirflowApi(_settings(fake, tmp_path)).request("GET", "/broken")
    assert str(broken.value) == "GET /api/v2/broken -> 500: Internal Server Error"
    down = Settings(airflow_url="http://127.0.0.1:9", airflow_admin_password="x")
    with pytest.raises(AirflowApiError, match=r"^Airflow login as 'admin' failed: POST") as gone:
        AirflowApi(down, timeout=2).dag_ids()
    assert "\n" not in str(gone.value)


def test_every_call_is_bounded_by_the_timeout(fake: FakeAirflow, tmp_path: Path) -> None:
    api = AirflowApi(_settings(fake, tmp_path), timeout=0.3)
    api.login()
    fake.delay = 1.5
    started = time.monotonic()
    with pytest.raises(AirflowApiError, match="timed out"):
        api.run("flightpipe_ingest", "r1")
    assert time.monotonic() - started < 1.2
    assert len([s for s in fake.seen if s["path"].endswith("/r1")]) == 1, "not retried"


def test_wait_for_run_gives_up_at_its_deadline(fake: FakeAirflow, tmp_path: Path) -> None:
    fake.run_state = "running"
    api = AirflowApi(_settings(fake, tmp_path))
    with pytest.raises(AirflowApiError, match="flightpipe_ingest r1 still running after 0 s"):
        api.wait_for_run("flightpipe_ingest", "r1", timeout=0.2)


def test_timings_teardown_reads_as_the_viewer(fake: FakeAirflow, tmp_path: Path) -> None:
    fake.ti_end = None  # nothing finished yet: nothing to write, so no database is needed
    assert record_task_runs(_settings(fake, tmp_path), "flightpipe_ingest", "r1") == 0
    assert fake.seen[0]["body"]["username"] == "flightpipe-timings"
    assert fake.seen[-1]["path"].startswith("/api/v2/dags/flightpipe_ingest/dagRuns/r1/task")
