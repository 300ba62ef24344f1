"""flightpipe's facade over Airflow 3's REST API (v2), on the official ``apache-airflow-client``.

Each facade logs in as one identity: ``admin`` for what changes DAGs and runs (pause,
trigger), ``reader`` (a viewer) for what only reads them. It keeps one ApiClient, so its
urllib3 pool reuses connections, and bounds every request by ``timeout``. Results are plain
dicts shaped as the REST API's JSON (ISO timestamps, enum values as strings): the client's
models validate each response and are then dumped in JSON mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import urllib3
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody
from pydantic import BaseModel, ValidationError

from flightpipe.settings import Settings
from flightpipe.waiting import poll

DAG_IDS = (
    "flightpipe_ingest",
    "flightpipe_transform",
    "flightpipe_load",
    "flightpipe_reports",
    "flightpipe_ml",
)
FINISHED = {"success", "failed"}

# Who the facade logs in as. With Airflow 3.3's simple auth manager the reader holds the
# viewer role, and SimpleAuthManager._is_authorized lets a role do a GET on a resource from
# the resource's "allow_get_role" up and anything else from its "allow_role" up.
# is_authorized_dag (DAGs, and through DagAccessEntity their runs, task instances, XComs and
# logs) has allow_get_role=VIEWER, allow_role=USER: the viewer reads runs and task
# instances, but cannot trigger (POST .../dagRuns needs method POST), pause (PATCH
# /dags/{id} checks method PUT) or clear anything. Connections and variables need OP even
# to read, so the viewer's token does not open them either.
Identity = Literal["admin", "reader"]

# Only failures to connect are retried: the request was not sent, so a trigger cannot
# create two runs. A request that was sent fails at once, as it did over httpx.
RETRIES = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0)
# Generated endpoints declare both schemes; each sends the bearer token.
AUTH = ["OAuth2PasswordBearer", "HTTPBearer"]
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
T = TypeVar("T")


class AirflowApiError(RuntimeError):
    """A call to Airflow's API failed; the message is one line."""


def credentials(settings: Settings, identity: Identity) -> tuple[str, str]:
    if identity == "admin":
        return settings.airflow_admin_user, settings.airflow_admin_password
    return settings.airflow_reader_user, settings.airflow_reader_password


def _one_line(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _plain(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


class AirflowApi:
    def __init__(
        self, settings: Settings, timeout: float = 30.0, *, identity: Identity = "admin"
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.timeout = float(timeout)
        self.configuration = Configuration(host=settings.airflow_base_url, retries=RETRIES)
        self.client = ApiClient(self.configuration)
        self._dags = DAGApi(self.client)
        self._runs = DagRunApi(self.client)
        self._tis = TaskInstanceApi(self.client)

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.rest_client.pool_manager.clear()

    # --- transport ---------------------------------------------------------------------
    def _send(self, method: str, path: str, *, auth: bool, **kwargs: Any) -> Any:
        """One request through the client's pool and serializer; the decoded JSON body."""
        what = f"{method} {path}"
        try:
            request = self.client.param_serialize(
                method, path, auth_settings=AUTH if auth else None, **kwargs
            )
            response = self.client.call_api(*request, _request_timeout=self.timeout)
            response.read()
        except (urllib3.exceptions.HTTPError, ApiException) as exc:
            raise AirflowApiError(f"{what}: {_one_line(exc)}") from exc
        body = response.data or b""
        if response.status >= 400:
            raise AirflowApiError(f"{what} -> {response.status}: {_one_line(body.decode())}")
        try:
            return json.loads(body) if body else None
        except ValueError as exc:
            raise AirflowApiError(f"{what} -> {response.status}: not JSON") from exc

    def login(self) -> None:
        """Fetch a token for this facade's identity (the client package has no helper)."""
        user, password = credentials(self.settings, self.identity)
        try:
            body = self._send(
                "POST",
                "/auth/token",
                auth=False,
                header_params=dict(JSON_HEADERS),
                body={"username": user, "password": password},
            )
        except AirflowApiError as exc:
            raise AirflowApiError(f"Airflow login as {user!r} failed: {exc}") from exc
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AirflowApiError(f"Airflow login as {user!r} returned no access_token")
        self.configuration.access_token = token

    def _call(self, what: str, endpoint: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.configuration.access_token is None:
            self.login()
        try:
            return endpoint(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            detail = _one_line(exc.body or exc.reason)
            raise AirflowApiError(f"{what} -> {exc.status}: {detail}") from exc
        except (urllib3.exceptions.HTTPError, ValidationError) as exc:
            raise AirflowApiError(f"{what}: {_one_line(exc)}") from exc

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        """An endpoint the facade has no method for (``path`` below /api/v2); its JSON body."""
        if self.configuration.access_token is None:
            self.login()
        return self._send(
            method,
            f"/api/v2{path}",
            auth=True,
            header_params=dict(JSON_HEADERS),
            query_params=list((params or {}).items()),
            body=json,
        )

    # --- DAGs and runs -----------------------------------------------------------------
    def dag_ids(self) -> set[str]:
        found = self._call("list DAGs", self._dags.get_dags, limit=100, dag_id_pattern="flightpipe")
        return {dag.dag_id for dag in found.dags}

    def dag(self, dag_id: str) -> dict[str, Any]:
        return _plain(self._call(f"DAG {dag_id}", self._dags.get_dag, dag_id))

    def wait_for_dags(self, dag_ids: tuple[str, ...] = DAG_IDS, timeout: float = 120) -> None:
        missing = poll(
            lambda: set(dag_ids) - self.dag_ids(),
            until=lambda left: not left,
            timeout=timeout,
            interval=2,
        )
        if missing:
            raise AirflowApiError(f"DAGs not parsed within {timeout:.0f} s: {sorted(missing)}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        body = DAGPatchBody(is_paused=paused)
        self._call(f"pause {dag_id}={paused}", self._dags.patch_dag, dag_id, body)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        # No logical date: manual runs of one DAG then never collide on the same date.
        body = TriggerDAGRunPostBody(logical_date=None, conf=conf or {})
        run = self._call(f"trigger {dag_id}", self._runs.trigger_dag_run, dag_id, body)
        return str(run.dag_run_id)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return _plain(self._call(f"run {dag_id} {run_id}", self._runs.get_dag_run, dag_id, run_id))

    def runs(self, dag_id: str, limit: int = 50) -> list[dict[str, Any]]:
        found = self._call(
            f"runs of {dag_id}",
            self._runs.get_dag_runs,
            dag_id,
            limit=limit,
            order_by=["-run_after"],
        )
        return [_plain(run) for run in found.dag_runs]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        run = poll(
            lambda: self.run(dag_id, run_id),
            until=lambda r: r["state"] in FINISHED,
            timeout=timeout,
        )
        if run["state"] not in FINISHED:
            raise AirflowApiError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found = self._call(
            f"task instances of {dag_id} {run_id}",
            self._tis.get_task_instances,
            dag_id,
            run_id,
            limit=200,
        )
        return [_plain(ti) for ti in found.task_instances]
