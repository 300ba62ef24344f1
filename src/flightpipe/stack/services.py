"""Which processes make up the local stack, derived from Settings."""

from __future__ import annotations

from flightpipe.ingest import ROLES
from flightpipe.settings import Settings
from flightpipe.stack import kafka, postgres, s3proxy
from flightpipe.stack.airflow_env import venv_bin
from flightpipe.stack.supervisor import Program

LIVE_PRODUCER = "live-producer-"
LIVE_CONSUMER = "live-consumer-"
LIVE_PROGRAMS = (LIVE_PRODUCER, LIVE_CONSUMER)
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Airflow's log server binds every interface (its host is not configurable). With the
# LocalExecutor the api-server reads task and trigger logs from the local log folder, so
# the log servers are not started at all.
AIRFLOW_FLAGS = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"]}


def needs_local_postgres(settings: Settings) -> bool:
    # Airflow's metadata lives in the local server even when the warehouse is elsewhere.
    return settings.local_postgres or settings.local_airflow


def dask_scheduler_command(settings: Settings, host: str = "127.0.0.1") -> list[str]:
    """The local scheduler, its dashboard beside it, both on ``host`` only."""
    return [
        str(venv_bin() / "dask"),
        "scheduler",
        "--host",
        host,
        "--port",
        str(settings.dask_port),
        "--dashboard-address",
        f"{host}:{settings.dask_dashboard_port}",
    ]


def dask_worker_command(
    settings: Settings, number: int, host: str = "127.0.0.1", scheduler: str | None = None
) -> list[str]:
    """Local worker ``number`` on ``host``, joining ``scheduler`` (default: the settings')."""
    return [
        str(venv_bin() / "dask"),
        "worker",
        scheduler or settings.dask_address,
        "--name",
        f"worker-{number}",
        "--host",
        host,
        # Each worker's own dashboard would bind every interface otherwise.
        "--dashboard-address",
        f"{host}:0",
        "--nthreads",
        str(settings.dask_threads),
        "--memory-limit",
        settings.dask_memory_limit,
        "--local-directory",
        str(settings.run_dir / "dask"),
    ]


def programs(settings: Settings, airflow_env: dict[str, str]) -> list[Program]:
    progs: list[Program] = []
    common = {"FLIGHTPIPE_HOME": str(settings.home), "FLIGHTPIPE_RUN_DIR": str(settings.run_dir)}
    if needs_local_postgres(settings):
        progs.append(
            Program(
                "postgres",
                postgres.server_command(settings),
                user=postgres.server_user(),
                directory=postgres.cluster_dir(settings),
                stopsignal="INT",  # fast shutdown: roll back open transactions, then stop
                stopwaitsecs=60,
            )
        )
    if settings.local_s3:
        progs.append(Program(s3proxy.PROGRAM, s3proxy.configure(settings), stopwaitsecs=30))
    if settings.local_kafka:
        for node in kafka.node_ids(settings):
            progs.append(
                Program(
                    kafka.program_name(settings, node),
                    kafka.server_command(settings, node),
                    stopwaitsecs=60,
                )
            )
    if settings.local_dask:
        progs.append(Program("dask-scheduler", dask_scheduler_command(settings), env=common))
        for i in range(1, settings.dask_workers + 1):
            progs.append(Program(f"dask-worker-{i}", dask_worker_command(settings, i), env=common))
    if settings.local_airflow:
        for component in AIRFLOW_COMPONENTS:
            progs.append(
                Program(
                    f"airflow-{component}",
                    [str(venv_bin() / "airflow"), component, *AIRFLOW_FLAGS.get(component, [])],
                    env=airflow_env,
                    directory=settings.home,
                )
            )
    # The dashboard reads whichever warehouse and Kafka the settings name, local or not.
    progs.append(Program("dashboard", [str(venv_bin() / "flightpipe"), "dashboard"], env=common))
    if settings.mode == "live":
        progs += live_programs(settings, common)
    return progs


def live_programs(settings: Settings, env: dict[str, str]) -> list[Program]:
    """Live mode's always-on processes: a producer per role, the landing members."""
    flightpipe = str(venv_bin() / "flightpipe")
    producers = [
        Program(f"{LIVE_PRODUCER}{role}", [flightpipe, "live", "produce", "--role", role], env=env)
        for role in ROLES
    ]
    members = [
        # Long enough to land and commit what a member holds when it is told to stop.
        Program(
            f"{LIVE_CONSUMER}{i}",
            [flightpipe, "live", "consume", "--member", str(i)],
            env=env,
            stopwaitsecs=60,
        )
        for i in range(settings.consumers)
    ]
    return producers + members


def ports(settings: Settings) -> dict[str, list[tuple[int, str]]]:
    """Program -> [(port, env var that moves it)], for clash reports."""
    # Every broker's ports follow the two Kafka settings, so those are the ones to move.
    brokers = {
        kafka.program_name(settings, node): [
            (port, "FLIGHTPIPE_KAFKA_PORT"),
            (cport, "FLIGHTPIPE_KAFKA_CONTROLLER_PORT"),
        ]
        for node, port, cport in zip(
            kafka.node_ids(settings),
            settings.kafka_broker_ports,
            settings.kafka_controller_ports,
            strict=True,
        )
    }
    return {
        "postgres": [(settings.pg_port, "FLIGHTPIPE_PG_PORT")],
        **brokers,
        "dask-scheduler": [
            (settings.dask_port, "FLIGHTPIPE_DASK_PORT"),
            (settings.dask_dashboard_port, "FLIGHTPIPE_DASK_DASHBOARD_PORT"),
        ],
        "airflow-api-server": [(settings.airflow_port, "FLIGHTPIPE_AIRFLOW_PORT")],
        s3proxy.PROGRAM: [(settings.s3proxy_port, "FLIGHTPIPE_S3PROXY_PORT")],
        "dashboard": [(settings.dashboard_port, "FLIGHTPIPE_DASHBOARD_PORT")],
    }
