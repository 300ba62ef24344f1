"""The SQL behind the charts and the report: reads the warehouse only, never landing files.

The ``mart`` views are used wherever one answers the question; the rest reads ``dw``,
``meta`` and ``ml`` directly.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd
import psycopg

ON_TIME_BY_CARRIER: Final = """
SELECT carrier_code,
       airline AS name,
       sum(flights)::bigint AS flights,
       sum(arrived)::bigint AS arrived,
       (sum(on_time)::float8 / sum(arrived)) AS on_time_rate
FROM mart.on_time_by_carrier_month
GROUP BY carrier_code, airline
HAVING sum(arrived) > 0
ORDER BY on_time_rate DESC
"""

# Local scheduled hour at the origin: the hour a traveller reads on the ticket.
DELAY_BY_HOUR_WEEKDAY: Final = """
SELECT d.day_of_week::int AS weekday,
       (f.sched_dep_time / 100)::int AS hour,
       count(*) AS flights,
       avg(f.dep_delay_min)::float8 AS mean_dep_delay
FROM dw.fact_flight AS f
JOIN dw.dim_date AS d ON d.date_key = f.date_key
WHERE f.dep_delay_min IS NOT NULL
GROUP BY 1, 2
"""

DELAY_BY_WEATHER: Final = """
SELECT factor, bucket, bucket_label, flights,
       mean_dep_delay::float8 AS mean_dep_delay,
       delayed_share::float8 AS delayed_share
FROM mart.delay_by_weather
ORDER BY factor, bucket
"""
WEATHER_FACTORS: Final = {
    "visibility": ("Visibility", "mi", 5),
    "precipitation": ("Precipitation", "in/h", 4),
    "wind": ("Wind speed", "mph", 5),
}

DAILY_BY_ORIGIN: Final = """
SELECT airport AS origin,
       full_date AS day,
       flights,
       departed,
       mean_dep_delay::float8 AS mean_dep_delay,
       mean_dep_delay_7d::float8 AS mean_dep_delay_7d
FROM mart.airport_delay_rolling_7d
ORDER BY airport, full_date
"""

PLANE_AGE: Final = """
SELECT age_band, age_label, flights,
       mean_arr_delay::float8 AS mean_arr_delay,
       late_share::float8 AS late_share
FROM mart.plane_age_effect
ORDER BY age_band NULLS LAST
"""

# Aggregated per destination key before the join: joining a hundred rows to the airports
# is cheaper than joining every flight and grouping by the airports' columns.
DESTINATIONS: Final = """
WITH per_dest AS (
    SELECT dest_airport_key, count(*) AS flights, avg(arr_delay_min)::float8 AS mean_arr_delay
    FROM dw.fact_flight
    GROUP BY dest_airport_key
)
SELECT a.faa_code, a.name,
       a.latitude::float8 AS latitude, a.longitude::float8 AS longitude,
       p.flights, p.mean_arr_delay
FROM per_dest AS p
JOIN dw.dim_airport AS a ON a.airport_key = p.dest_airport_key
WHERE a.latitude IS NOT NULL AND a.longitude IS NOT NULL
"""

# A semi-join answered from the index on origin_airport_key, not a DISTINCT over all flights.
ORIGINS: Final = """
SELECT a.faa_code, a.latitude::float8 AS latitude, a.longitude::float8 AS longitude
FROM dw.dim_airport AS a
WHERE a.latitude IS NOT NULL AND a.longitude IS NOT NULL
  AND EXISTS (SELECT 1 FROM dw.fact_flight AS f WHERE f.origin_airport_key = a.airport_key)
"""

# Wall time of each stage of the latest DAG runs: mapped instances run side by side, so a
# stage lasts from its first start to its last end, not the sum of its instances.
TASK_STAGES: Final = """
WITH last_try AS (
    SELECT DISTINCT ON (dag_id, run_id, task_id, map_index)
           dag_id, run_id, task_id, started_at, ended_at
    FROM meta.task_runs
    WHERE ended_at IS NOT NULL
    ORDER BY dag_id, run_id, task_id, map_index, try_number DESC
), runs AS (
    SELECT dag_id, run_id, min(started_at) AS run_started
    FROM last_try GROUP BY dag_id, run_id
    ORDER BY run_started DESC LIMIT %(runs)s
)
SELECT t.dag_id, t.run_id, r.run_started, t.task_id,
       min(t.started_at) AS stage_started,
       extract(epoch FROM max(t.ended_at) - min(t.started_at))::float8 AS seconds
FROM last_try AS t
JOIN runs AS r USING (dag_id, run_id)
GROUP BY t.dag_id, t.run_id, r.run_started, t.task_id
ORDER BY r.run_started, stage_started
"""

LOAD_STEPS: Final = """
WITH batches AS (
    SELECT batch_id, started_at, status, rows_loaded, timings
    FROM meta.load_batches
    WHERE timings <> '{}'::jsonb
    ORDER BY batch_id DESC LIMIT %(runs)s
)
SELECT b.batch_id, b.started_at, b.status, b.rows_loaded, s.key AS step,
       (s.value #>> '{}')::float8 AS seconds
FROM batches AS b, jsonb_each(b.timings) AS s
WHERE jsonb_typeof(s.value) = 'number' AND s.key <> 'total'
ORDER BY b.batch_id
"""

# Destinations are counted by hashing, as mart.kpi counts carriers and routes.
KPIS: Final = """
SELECT k.flights,
       k.cancelled_share::float8 AS cancelled_share,
       k.diverted_share::float8 AS diverted_share,
       k.mean_dep_delay::float8 AS mean_dep_delay,
       k.mean_arr_delay::float8 AS mean_arr_delay,
       k.on_time_rate::float8 AS on_time_rate,
       to_date(k.first_date_key::text, 'YYYYMMDD') AS first_day,
       to_date(k.last_date_key::text, 'YYYYMMDD') AS last_day,
       k.carriers,
       k.routes,
       (SELECT count(*) FROM (SELECT DISTINCT dest_airport_key FROM dw.fact_flight) AS d)
           AS destinations,
       k.weather_hours,
       (SELECT count(*) FROM meta.load_batches) AS load_batches,
       (SELECT count(*) FROM ml.predictions) AS predictions
FROM mart.kpi AS k
"""

LATEST_BATCH: Final = """
SELECT batch_id, started_at, finished_at, status, files, rows_in, rows_duplicate,
       rows_loaded, rows_rejected, rows_inserted, rows_updated
FROM meta.load_batches
ORDER BY batch_id DESC
LIMIT 1
"""

# The checks of the newest batch that ran any; on-demand checks (no batch) when newer.
# Rows the transform or the load's quarantine set aside, per topic and reason, all batches.
REJECTS_BY_REASON: Final = """
SELECT topic, reason, count(*) AS rows, max(batch_id) AS last_batch
FROM meta.rejected_rows
GROUP BY topic, reason
ORDER BY count(*) DESC, topic, reason
"""

LATEST_CHECKS: Final = """
WITH latest AS (
    SELECT batch_id, max(checked_at) AS checked_at
    FROM meta.check_results
    GROUP BY batch_id
    ORDER BY max(checked_at) DESC
    LIMIT 1
)
SELECT c.batch_id, c.check_name, c.passed, c.observed::float8, c.expected::float8,
       c.details::text, c.checked_at
FROM meta.check_results AS c
JOIN latest AS l ON c.batch_id IS NOT DISTINCT FROM l.batch_id
ORDER BY c.passed, c.check_name
"""

MODEL_RUNS: Final = """
SELECT model_run_id, algorithm, created_at, data_from, data_to,
       params ->> 'training_id' AS training_id,
       (metrics ->> 'roc_auc')::float8 AS roc_auc,
       (metrics ->> 'pr_auc')::float8 AS pr_auc,
       (metrics ->> 'brier')::float8 AS brier,
       (metrics #>> '{baseline,roc_auc}')::float8 AS baseline_roc_auc,
       (metrics #>> '{baseline,pr_auc}')::float8 AS baseline_pr_auc,
       (metrics #>> '{baseline,brier}')::float8 AS baseline_brier,
       (metrics ->> 'n_train')::bigint AS n_train,
       (metrics ->> 'n_test')::bigint AS n_test,
       metrics ->> 'test_from' AS test_from,
       metrics ->> 'test_to' AS test_to,
       (SELECT count(*) FROM ml.predictions AS p WHERE p.model_run_id = r.model_run_id)
           AS predictions
FROM ml.model_runs AS r
ORDER BY model_run_id DESC
LIMIT %(limit)s
"""


def frame(
    conn: psycopg.Connection, query: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Aggregates are small, so a plain fetch into a DataFrame is enough here."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [c.name for c in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def one(
    conn: psycopg.Connection, query: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The first row as a dict (empty when there is none)."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
        if row is None:
            return {}
        return {c.name: v for c, v in zip(cur.description or [], row, strict=True)}
