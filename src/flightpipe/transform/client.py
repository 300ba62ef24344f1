"""Connection to the Dask cluster.

The pipeline always uses the running distributed scheduler (``settings.dask_address``):
starting a cluster per run costs seconds and ``LocalCluster(processes=True)`` cannot start
inside an Airflow task process. The in-process cluster is an explicit opt-in for unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cloudpickle
from distributed import Client, LocalCluster

import flightpipe.transform as transform_package
from flightpipe.settings import Settings

# Ship the transform functions by value: workers then run exactly the caller's code version,
# even if they were started before an upgrade, and need only pandas/pyarrow installed.
cloudpickle.register_pickle_by_value(transform_package)


class DaskUnavailableError(RuntimeError):
    """The configured Dask scheduler could not be reached."""


@contextmanager
def dask_client(
    settings: Settings, *, local_fallback: bool = False, timeout: str = "10s"
) -> Iterator[Client]:
    """A client of the configured scheduler; an in-process cluster only if asked for."""
    try:
        client = Client(settings.dask_address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        if not local_fallback:
            raise DaskUnavailableError(
                f"Dask scheduler {settings.dask_address} is not reachable: {exc}"
            ) from exc
        with (
            LocalCluster(
                processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
            ) as cluster,
            Client(cluster, set_as_default=False) as local,
        ):
            yield local
        return
    try:
        yield client
    finally:
        client.close()
