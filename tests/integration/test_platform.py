"""The four services answer real requests with the generated credentials."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from flightpipe.settings import Settings
from flightpipe.stack.postgres import AIRFLOW_IDLE_IN_TRANSACTION_S
from flightpipe.waiting import wait_until

pytestmark = pytest.mark.services


def test_kafka_roundtrip(stack: Settings, unique: str) -> None:
    topic = f"platform-{unique}"
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    try:
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "acks": "all"})
        delivered: list[str] = []
        producer.produce(
            topic, key=b"k", value=b"hello", on_delivery=lambda err, msg: delivered.append(str(err))
        )
        assert producer.flush(10) == 0
        assert delivered == ["None"]
        consumer = Consumer(
            {
                "bootstrap.servers": stack.kafka_bootstrap,
                "group.id": f"platform-{unique}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        try:
            consumer.subscribe([topic])
            msg = wait_until(lambda: consumer.poll(1.0), what="the message", timeout=30, interval=0)
            assert msg.error() is None
            assert (msg.key(), msg.value()) == (b"k", b"hello")
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])[topic].result()


def test_postgres_as_warehouse_role(stack: Settings, unique: str) -> None:
    table = f"platform_{unique}"
    with psycopg.connect(stack.warehouse_dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (stack.warehouse_user,)
        conn.execute(f"CREATE TEMP TABLE {table} (id int PRIMARY KEY, name text)")
        with conn.cursor().copy(f"COPY {table} (id, name) FROM STDIN") as copy:
            for i in range(1000):
                copy.write_row((i, f"n{i}"))
        assert conn.execute(f"SELECT count(*), sum(id) FROM {table}").fetchone() == (
            1000,
            sum(range(1000)),
        )


def test_airflow_sessions_idle_in_a_transaction_are_closed(airflow_db_url: str) -> None:
    # A session left in a transaction by a killed scheduler would hold its locks for good.
    with psycopg.connect(airflow_db_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT setting::int, unit FROM pg_settings"
            " WHERE name = 'idle_in_transaction_session_timeout'"
        ).fetchone()
    assert row == (AIRFLOW_IDLE_IN_TRANSACTION_S * 1000, "ms")


def test_postgres_rejects_wrong_password(stack: Settings) -> None:
    bad = stack.warehouse_dsn.replace(stack.warehouse_password, "wrong-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def test_dask_cluster_computes(stack: Settings) -> None:
    import dask.array as da
    from distributed import Client

    with Client(stack.dask_address, timeout="10s") as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == stack.dask_workers
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
        x = da.arange(1_000_000, chunks=100_000)
        assert int(client.compute(x.sum()).result()) == 999_999 * 1_000_000 // 2


def test_dask_dashboard_serves_its_pages(stack: Settings) -> None:
    page = httpx.get(
        f"http://127.0.0.1:{stack.dask_dashboard_port}/status", follow_redirects=True, timeout=10
    )
    assert page.status_code == 200
    assert "Dask Diagnostic UI" in page.text  # not the "install bokeh" placeholder


def test_airflow_rest_api_with_generated_login(stack: Settings) -> None:
    base = stack.airflow_base_url
    token = httpx.post(
        f"{base}/auth/token",
        json={"username": stack.airflow_admin_user, "password": stack.airflow_admin_password},
        timeout=10,
    )
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    version = httpx.get(f"{base}/api/v2/version", headers=headers, timeout=10)
    assert version.status_code == 200
    assert version.json()["version"].startswith("3.")
    denied = httpx.get(f"{base}/api/v2/dags", timeout=10)
    assert denied.status_code == 401
    refused = httpx.post(
        f"{base}/auth/token",
        json={"username": stack.airflow_admin_user, "password": "not-the-password"},
        timeout=10,
    )
    assert refused.status_code == 401


def test_deployment_parses_the_dags_without_errors(stack: Settings) -> None:
    # The running DAG processor reads the project's dags/ folder: all four DAGs, no errors.
    from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi

    api = AirflowApi(stack)
    api.wait_for_dags(DAG_IDS)
    errors = api.request("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors["import_errors"]


def test_second_up_starts_nothing(stack: Settings) -> None:
    from flightpipe.stack import up as stack_up

    result = stack_up.up(log=lambda _msg: None)
    assert result.started == []
