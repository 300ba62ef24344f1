"""Start, stop and probe the local services (Kafka, PostgreSQL, Dask, Airflow).

No business logic lives here: only processes, configuration files and health probes.
"""
