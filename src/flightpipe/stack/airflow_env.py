"""Configuration of the local Airflow 3 deployment, expressed as environment variables.

The package never imports Airflow; it only prepares the environment its processes run in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from flightpipe.live.notices import NOTICES_CONN_ID
from flightpipe.settings import Settings
from flightpipe.stack.errors import StackError
from flightpipe.stack.secrets import write_private


def airflow_home(settings: Settings) -> Path:
    return settings.run_dir / "airflow"


def venv_bin() -> Path:
    return Path(sys.executable).parent


def api_logins(settings: Settings) -> list[tuple[str, str, str]]:
    """(user, role, password) of every login of the simple auth manager.

    The admin changes things (unpause, trigger); the reader is a viewer, so a leaked token of
    the timings teardown, which runs inside every DAG, can read runs but change nothing.
    """
    logins = [
        (settings.airflow_admin_user, "admin", settings.airflow_admin_password),
        (settings.airflow_reader_user, "viewer", settings.airflow_reader_password),
    ]
    names = [user for user, _, _ in logins]
    if len(set(names)) != len(names):
        raise StackError(f"the Airflow logins need distinct user names, got {names}")
    for user in names:
        # The users setting is "user:role" pairs joined by commas.
        if not user or any(c in user for c in ":,") or user != user.strip():
            raise StackError(f"Airflow user name {user!r}: not empty or padded, no ':' or ','")
    return logins


def auth_manager_users(settings: Settings) -> str:
    """The value of AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS."""
    return ",".join(f"{user}:{role}" for user, role, _ in api_logins(settings))


def environment(
    settings: Settings, secrets: dict[str, str], host: str = "127.0.0.1"
) -> dict[str, str]:
    """Airflow's configuration; its API server listens on ``host`` (default: loopback)."""
    home = airflow_home(settings)
    base = settings.airflow_base_url
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.home / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": secrets["AIRFLOW_FERNET_KEY"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": auth_manager_users(settings),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.airflow_dsn,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API__SECRET_KEY": secrets["AIRFLOW_API_SECRET_KEY"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["AIRFLOW_JWT_SECRET"],
        # New DAG files show up within 30 s and changed ones are parsed again after 30 s:
        # every 10 s, re-parsing the eight files took an eighth of a core all the time.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # A loop with nothing to do sleeps this long (default 1 s): each task hand-off of a
        # cycle waits up to one sleep, and a one-day cycle has about ten of them.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
        # Off by default; should it be switched on, it must not listen beyond loopback.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": host,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__METRICS__STATSD_ON": "False",
        "FLIGHTPIPE_HOME": str(settings.home),
        "FLIGHTPIPE_RUN_DIR": str(settings.run_dir),
        "NO_PROXY": "*",
        f"AIRFLOW_CONN_{NOTICES_CONN_ID.upper()}": notices_connection(settings),
    }


def notices_connection(settings: Settings) -> str:
    """The Kafka connection of the live DAG's AssetWatcher, from the one Kafka client
    configuration."""
    from flightpipe.ingest.kafka_clients import base_config

    extra = {
        **base_config(settings),
        "group.id": f"{settings.consumer_group}-live-watcher",
        # A watcher that starts late has nothing to catch up: a load takes every file.
        "auto.offset.reset": "latest",
        "enable.auto.commit": False,
    }
    # The URI form: supervisor's environment lines cannot carry JSON's double quotes.
    return "kafka://?__extra__=" + quote(json.dumps(extra), safe="")


def write_passwords_file(settings: Settings) -> None:
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    # Every login gets its generated password here; one missing from the file would get a
    # random one from Airflow, printed to the API server's log.
    passwords = {user: password for user, _, password in api_logins(settings)}
    write_private(home / "passwords.json", json.dumps(passwords))


LOCAL_SETTINGS = '''\
"""Written by flightpipe (stack/airflow_env.py); each Airflow process imports it.

In the scheduler, whose LocalExecutor forks every task process, it imports the libraries the
pipeline's tasks need, once: each task then starts with them (see flightpipe.preload).
"""

from flightpipe.preload import in_airflow_process as _preload

# Airflow copies the public names of this module into its settings: keep none.
__all__: list[str] = []

_preload()
'''


def write_local_settings(settings: Settings) -> Path:
    """``airflow_local_settings.py`` in the config folder Airflow puts on its path."""
    path = airflow_home(settings) / "config" / "airflow_local_settings.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOCAL_SETTINGS, encoding="utf-8")
    return path


def write_env_file(settings: Settings, env: dict[str, str]) -> Path:
    """A sourceable file, so `airflow ...` commands can be run by hand against this stack."""
    path = settings.run_dir / "airflow.env"
    write_private(path, "".join(f"export {k}='{v}'\n" for k, v in sorted(env.items())))
    return path


def migrate_db(settings: Settings, env: dict[str, str]) -> bool:
    """`airflow db migrate`, skipped when this Airflow version already migrated this database."""
    marker = airflow_home(settings) / ".migrated"
    stamp = f"{settings.airflow_dsn.rsplit('@', 1)[-1]}|{_airflow_version()}"
    if marker.exists() and marker.read_text() == stamp:
        return False
    print("Migrating the Airflow metadata database ...", flush=True)
    result = subprocess.run(
        [str(venv_bin() / "airflow"), "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise StackError(f"`airflow db migrate` failed:\n{tail}")
    marker.write_text(stamp)
    return True


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")
