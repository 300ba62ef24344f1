"""A small client for Airflow 3's REST API (v2), authenticated with the generated admin login."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from flightpipe.settings import Settings

DAG_IDS = (
    "flightpipe_ingest",
    "flightpipe_transform",
    "flightpipe_load",
    "flightpipe_reports",
    "flightpipe_ml",
)
FINISHED = {"success", "failed"}


class AirflowApiError(RuntimeError):
    pass


@dataclass
class AirflowApi:
    settings: Settings
    timeout: float = 30.0
    _token: str | None = field(default=None, init=False, repr=False)

    @property
    def base(self) -> str:
        return self.settings.airflow_base_url

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = httpx.post(
                f"{self.base}/auth/token",
                json={
                    "username": self.settings.airflow_admin_user,
                    "password": self.settings.airflow_admin_password,
                },
                timeout=self.timeout,
            )
            if response.status_code not in (200, 201):
                raise AirflowApiError(
                    f"Airflow login failed ({response.status_code}): {response.text[:200]}"
                )
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.base}/api/v2{path}",
            headers=self._headers(),
            timeout=self.timeout,
            **kwargs,
        )
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} {path} -> {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    # --- DAGs and runs -----------------------------------------------------------------
    def dag_ids(self) -> set[str]:
        body = self.request("GET", "/dags", params={"limit": 100, "dag_id_pattern": "flightpipe"})
        return {d["dag_id"] for d in body["dags"]}

    def wait_for_dags(self, dag_ids: tuple[str, ...] = DAG_IDS, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            missing = set(dag_ids) - self.dag_ids()
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AirflowApiError(f"DAGs not parsed within {timeout:.0f} s: {sorted(missing)}")
            time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = self.request(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return str(body["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def runs(self, dag_id: str, limit: int = 50) -> list[dict[str, Any]]:
        body = self.request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"limit": limit, "order_by": "-run_after"}
        )
        return list(body["dag_runs"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id} {run_id} still {run['state']} after {timeout} s")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 200}
        )
        return list(body["task_instances"])
