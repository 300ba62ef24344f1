"""Local S3Proxy: an S3-compatible object store, run from Maven Central jars.

Started by ``flightpipe up`` only when the storage URL is ``s3://`` and no external endpoint
is set. Objects live in jclouds' filesystem backend under ``<run_dir>/s3proxy/data`` (a
bucket is a folder there). The access key and secret are generated into the secrets file;
the properties file that hands them to the server is mode 600 like the other secrets.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx

from flightpipe.settings import Settings
from flightpipe.stack import maven
from flightpipe.stack.errors import StackError
from flightpipe.stack.secrets import write_private
from flightpipe.waiting import poll

POM: Final = Path(__file__).resolve().parents[3] / "stack" / "s3proxy" / "pom.xml"
MAIN_CLASS: Final = "org.gaul.s3proxy.Main"
PROGRAM: Final = "s3proxy"
CREDENTIAL_KEYS: Final = ("FLIGHTPIPE_S3_ACCESS_KEY", "FLIGHTPIPE_S3_SECRET_KEY")
LOGBACK: Final = """<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>[%d] %level %msg \\(%logger{0}\\)%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="out"/></root>
  <logger name="org.gaul.s3proxy" level="INFO"/>
</configuration>
"""


def s3proxy_dir(settings: Settings) -> Path:
    return settings.run_dir / "s3proxy"


def libs_dir(home: Path) -> Path:
    return home / ".cache" / "s3proxy-libs"


def require_java() -> None:
    maven.require_java("S3 store (S3Proxy)", "FLIGHTPIPE_S3_ENDPOINT_URL")


def install_jars(home: Path) -> None:
    maven.copy_dependencies(POM, libs_dir(home), "S3Proxy")


def write_config(
    folder: Path, port: int, access_key: str, secret_key: str, host: str = "127.0.0.1"
) -> Path:
    """The server's properties (they hold the secret: mode 600) and log config in
    ``folder``, listening on ``host:port``; the objects go to ``folder/data``. Returns the
    properties file."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    props = {
        "s3proxy.endpoint": f"http://{host}:{port}",
        "s3proxy.authorization": "aws-v2-or-v4",
        "s3proxy.identity": access_key,
        "s3proxy.credential": secret_key,
        "jclouds.provider": "filesystem",
        "jclouds.filesystem.basedir": str(data),
    }
    path = folder / "s3proxy.properties"
    write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()))
    (folder / "logback.xml").write_text(LOGBACK, encoding="utf-8")
    return path


def command(home: Path, properties: Path) -> list[str]:
    """The java command line of a server configured by ``properties``."""
    return [
        "java",
        "-Xms64m",
        "-Xmx256m",
        "-Djava.awt.headless=true",
        f"-Dlogback.configurationFile={properties.parent / 'logback.xml'}",
        "-cp",
        f"{libs_dir(home)}/*",
        MAIN_CLASS,
        "--properties",
        str(properties),
    ]


def configure(settings: Settings) -> list[str]:
    """Config of the stack's S3Proxy from the settings; returns its command line."""
    props = write_config(
        s3proxy_dir(settings), settings.s3proxy_port, settings.s3_access_key, settings.s3_secret_key
    )
    return command(settings.home, props)


@contextmanager
def private_server(home: Path, folder: Path, port: int) -> Iterator[dict[str, str]]:
    """A throwaway S3Proxy outside supervisor (tests, benchmarks) on 127.0.0.1:``port``
    with fresh credentials and its objects under ``folder``; stopped and removed on exit.

    Yields the endpoint URL, access key and secret key.
    """
    install_jars(home)
    creds = {"endpoint": f"http://127.0.0.1:{port}", "key": secrets.token_hex(10),
             "secret": secrets.token_urlsafe(30)}  # fmt: skip
    props = write_config(folder, port, creds["key"], creds["secret"])
    with (folder / "s3proxy.log").open("wb") as log:
        proc = subprocess.Popen(command(home, props), stdout=log, stderr=subprocess.STDOUT)
    try:
        up = poll(
            lambda: proc.poll() is None and _answers(creds["endpoint"]),
            until=lambda ok: ok or proc.poll() is not None,
            timeout=60,
            interval=0.5,
        )
        if not up:
            tail = (folder / "s3proxy.log").read_text(errors="replace")[-2000:]
            raise StackError(f"S3Proxy on port {port} did not start:\n{tail}")
        yield creds
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _answers(endpoint: str) -> bool:
    try:
        httpx.get(endpoint, timeout=2)
    except httpx.HTTPError:
        return False
    return True
