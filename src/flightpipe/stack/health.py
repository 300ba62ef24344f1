"""Real health probes: a request each service must answer, not just a live process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from flightpipe.settings import Settings
from flightpipe.stack import kafka, postgres
from flightpipe.waiting import poll, retry_transient


@dataclass(frozen=True)
class Health:
    service: str
    ok: bool
    detail: str


def probe_dask(address: str, min_workers: int, dashboard: str) -> str:
    from distributed import Client

    with Client(address, timeout="5s") as client:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        total = client.submit(sum, [1, 2, 3], pure=False).result(timeout=10)
    if workers < min_workers or total != 6:
        raise RuntimeError(f"{workers} worker(s) connected, {min_workers} expected")
    return f"client ok, {workers} worker(s), dashboard {dashboard}"


def probe_airflow(base_url: str) -> str:
    # One api-server worker also serves the running tasks' execution API, so while a cycle
    # starts its tasks a single request can queue for seconds: a slow answer is retried,
    # an unhealthy one is not.
    response = retry_transient(
        lambda: httpx.get(f"{base_url}/api/v2/monitor/health", timeout=10),
        on=(httpx.TimeoutException,),
        attempts=3,
        timeout=45,
    )
    response.raise_for_status()
    body = response.json()
    bad = [part for part, info in body.items() if (info or {}).get("status") != "healthy"]
    if bad:
        raise RuntimeError(f"unhealthy: {', '.join(bad)}")
    return f"health endpoint ok ({', '.join(body)})"


def probe_storage(settings: Settings) -> str:
    """Signed requests the object store must answer: list the buckets, find ours."""
    from flightpipe import storage

    fs, path = storage.filesystem(settings.storage_base, storage.storage_options(settings))
    bucket = path.split("/", 1)[0]
    buckets = {b.rstrip("/") for b in fs.ls("", detail=False)}
    state = "present" if bucket in buckets else "not created yet"
    return f"S3 API ok at {settings.s3_endpoint}, bucket {bucket} {state}"


def probe_dashboard(base_url: str) -> str:
    """The dashboard's own probe reads the warehouse as the reader, as its pages do."""
    response = httpx.get(f"{base_url}/health", timeout=10)
    body = response.json()
    if response.status_code != 200 or not body.get("ok"):
        raise RuntimeError(f"HTTP {response.status_code}: {body.get('error', body)}")
    latest = body.get("latest_event") or "nothing loaded yet"
    return f"{base_url} ok, warehouse read as reader (latest event: {latest})"


def checks(settings: Settings) -> dict[str, Callable[[], str]]:
    found: dict[str, Callable[[], str]] = {}
    if settings.s3_storage:
        found["storage"] = lambda: probe_storage(settings)
    return found | {
        "postgres": lambda: postgres.probe(settings.dsn("reader")),
        "kafka": lambda: kafka.probe(settings),
        "dask": lambda: probe_dask(
            settings.dask_address,
            settings.dask_workers if settings.local_dask else 1,
            f"http://127.0.0.1:{settings.dask_dashboard_port}/status",
        ),
        "airflow": lambda: probe_airflow(settings.airflow_base_url),
        "dashboard": lambda: probe_dashboard(settings.dashboard_url),
    }


def check(service: str, probe: Callable[[], str]) -> Health:
    try:
        return Health(service, True, probe())
    except Exception as exc:  # a probe failure is data here, not a crash
        return Health(service, False, f"{type(exc).__name__}: {exc}".strip()[:300])


def check_all(settings: Settings) -> list[Health]:
    return [check(name, probe) for name, probe in checks(settings).items()]


def wait_healthy(service: str, probe: Callable[[], str], timeout: float) -> Health:
    return poll(lambda: check(service, probe), until=lambda h: h.ok, timeout=timeout)
