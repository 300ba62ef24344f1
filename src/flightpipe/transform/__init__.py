"""Dask transformation of the landing zone into staging-shaped frames.

Entry points: :func:`flightpipe.transform.graph.run` (execute on a client) and
:func:`flightpipe.transform.client.dask_client` (connect to the configured scheduler).
"""
