"""Storage URLs: where each zone lives, what a remote reader is handed, what is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from flightpipe import storage
from flightpipe.settings import Settings
from flightpipe.transform.read import read_columns
from flightpipe.zones.clean import clean_dir
from flightpipe.zones.landing import partition_dir, topic_dir


def test_local_by_default_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.storage_base == str(tmp_path)
    assert not settings.s3_storage and not settings.local_s3
    assert storage.zone_url(settings, "landing") == str(tmp_path / "landing")
    assert clean_dir(settings) == str(tmp_path / "clean")
    assert partition_dir(settings, "flights", 2) == str(tmp_path / "landing/flights/partition=2")
    assert storage.storage_options(settings) == {}


def test_s3_base_gives_every_zone_a_url_under_it() -> None:
    settings = Settings(storage_url="s3://lake/flightpipe/", topic_prefix="p-")
    assert settings.storage_base == "s3://lake/flightpipe"
    assert {z: storage.zone_url(settings, z) for z in storage.ZONES} == {
        z: f"s3://lake/flightpipe/{z}" for z in storage.ZONES
    }
    assert topic_dir(settings, "flights") == "s3://lake/flightpipe/landing/p-flights"
    assert partition_dir(settings, "weather", 0) == (
        "s3://lake/flightpipe/landing/p-weather/partition=0"
    )


def test_no_endpoint_means_the_local_store_and_an_endpoint_an_external_one() -> None:
    local = Settings(storage_url="s3://lake", s3proxy_port=9999)
    assert local.local_s3 and local.s3_endpoint == "http://127.0.0.1:9999"
    external = Settings(storage_url="s3://lake", s3_endpoint_url="https://objects.example:443")
    assert external.s3_storage and not external.local_s3
    assert external.s3_endpoint == "https://objects.example:443"


def test_remote_readers_get_endpoint_and_credentials_in_the_options() -> None:
    settings = Settings(
        storage_url="s3://lake",
        s3_endpoint_url="http://10.0.0.5:9000",
        s3_region="eu-west-1",
        s3_access_key="AK",
        s3_secret_key="SK",
    )
    options = storage.storage_options(settings)
    assert options["key"] == "AK" and options["secret"] == "SK"
    assert options["client_kwargs"] == {"endpoint_url": "http://10.0.0.5:9000",
                                        "region_name": "eu-west-1"}  # fmt: skip
    assert options["use_listings_cache"] is False
    # No keys: the default credential chain (instance role, AWS_* variables) decides.
    assert "key" not in storage.storage_options(Settings(storage_url="s3://lake"))


@pytest.mark.parametrize(
    "url", ["gs://bucket/x", "s3://", "s3:///no-bucket", "ftp://host/folder", "hdfs://nn/x"]
)
def test_unusable_storage_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(storage_url=url)
    message = str(err.value.errors()[0]["msg"])
    assert url in message and "\n" not in message


def test_file_urls_and_paths_join_as_paths(tmp_path: Path) -> None:
    assert storage.join(f"file://{tmp_path}", "landing", "t") == str(tmp_path / "landing" / "t")
    assert storage.join("s3://b/p/", "clean", "batch-1") == "s3://b/p/clean/batch-1"
    assert storage.scheme("/a/b") == "file" and storage.scheme("S3://b") == "s3"


def test_local_publish_is_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    fs, path = storage.filesystem(str(tmp_path / "a" / "b.bin"))
    storage.publish_bytes(fs, path, b"abc")
    storage.publish_bytes(fs, path, b"defg")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"defg"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]


def test_reading_by_url_fills_missing_columns(tmp_path: Path) -> None:
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(pa.table({"a": [1]}), old)
    pq.write_table(pa.table({"a": [2], "b": ["x"]}), new)
    frame = read_columns([f"file://{old}", str(new)], ["a", "b"], {})
    assert frame["a"].tolist() == [1, 2]
    assert pd.isna(frame["b"][0]) and frame["b"][1] == "x"


def test_the_stack_runs_s3proxy_only_for_s3_without_an_endpoint(tmp_path: Path) -> None:
    from flightpipe.stack import services

    def names(**kw: str) -> set[str]:
        return {p.name for p in services.programs(Settings(run_dir=tmp_path, **kw), {})}

    assert "s3proxy" not in names()
    assert "s3proxy" not in names(storage_url="s3://b", s3_endpoint_url="https://s3.example")
    local = Settings(run_dir=tmp_path, storage_url="s3://b", s3proxy_port=19999)
    (program,) = [p for p in services.programs(local, {}) if p.name == "s3proxy"]
    props = tmp_path / "s3proxy" / "s3proxy.properties"
    assert program.command[-2:] == ["--properties", str(props)]
    assert props.stat().st_mode & 0o777 == 0o600  # it holds the secret
    assert "s3proxy.endpoint=http://127.0.0.1:19999\n" in props.read_text()
    assert services.ports(local)["s3proxy"] == [(19999, "FLIGHTPIPE_S3PROXY_PORT")]
