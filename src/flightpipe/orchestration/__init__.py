"""Talking to Airflow from the outside (REST API) and the state the DAGs keep in `meta`.

Nothing here imports Airflow: DAG files call into this package, never the reverse.
"""
