-- The analytical views over the star. Current state, not history: applied after every
-- migration run whenever this file changes (flightpipe.warehouse.current), so changing a
-- view is one edit here. Plain views: always current, no refresh step to forget; the
-- aggregations over one year of flights run in well under a second.
DROP VIEW IF EXISTS mart.on_time_by_carrier_month, mart.route_delay_rank_month,
    mart.airport_delay_rolling_7d, mart.delay_by_weather, mart.plane_age_effect, mart.kpi,
    mart.origin_daily, mart.prediction_outcomes;

CREATE VIEW mart.on_time_by_carrier_month AS
WITH monthly AS (
    SELECT a.carrier_code, a.name AS airline, d.year, d.month,
           count(*) AS flights,
           count(*) FILTER (WHERE f.is_cancelled) AS cancelled,
           count(f.arr_delay_min) AS arrived,
           count(*) FILTER (WHERE f.arr_delay_min <= 15) AS on_time,
           avg(f.arr_delay_min) AS mean_arr_delay
    FROM dw.fact_flight AS f
    JOIN dw.dim_airline AS a ON a.airline_key = f.airline_key
    JOIN dw.dim_date AS d ON d.date_key = f.date_key
    GROUP BY a.carrier_code, a.name, d.year, d.month
)
SELECT carrier_code, airline, year, month, flights, cancelled, arrived, on_time,
       round(on_time::numeric / NULLIF(arrived, 0), 4) AS on_time_rate,
       round(mean_arr_delay, 2) AS mean_arr_delay,
       rank() OVER (PARTITION BY year, month
                    ORDER BY on_time::numeric / NULLIF(arrived, 0) DESC NULLS LAST)
           AS rank_in_month,
       round(sum(on_time) OVER last3 / NULLIF(sum(arrived) OVER last3, 0), 4)
           AS on_time_rate_rolling_3m
FROM monthly
WINDOW last3 AS (PARTITION BY carrier_code ORDER BY year, month
                 ROWS BETWEEN 2 PRECEDING AND CURRENT ROW);
COMMENT ON VIEW mart.on_time_by_carrier_month IS 'Per carrier and month: flights, cancellations, on-time arrivals (arrival delay <= 15 min), the carrier''s rank in the month and its rolling 3-month on-time rate.';

CREATE VIEW mart.route_delay_rank_month AS
WITH routes AS (
    SELECT d.year, d.month, o.faa_code AS origin, de.faa_code AS dest,
           de.name AS dest_name,
           count(*) AS flights,
           count(f.arr_delay_min) AS arrived,
           avg(f.arr_delay_min) AS mean_arr_delay,
           avg(f.dep_delay_min) AS mean_dep_delay
    FROM dw.fact_flight AS f
    JOIN dw.dim_date AS d ON d.date_key = f.date_key
    JOIN dw.dim_airport AS o ON o.airport_key = f.origin_airport_key
    JOIN dw.dim_airport AS de ON de.airport_key = f.dest_airport_key
    GROUP BY d.year, d.month, o.faa_code, de.faa_code, de.name
)
SELECT year, month, origin, dest, dest_name, flights, arrived,
       round(mean_arr_delay, 2) AS mean_arr_delay,
       round(mean_dep_delay, 2) AS mean_dep_delay,
       -- Rank only routes with enough arrivals for a stable mean; the rest get NULL.
       CASE WHEN arrived >= 20 THEN
           rank() OVER (PARTITION BY year, month, arrived >= 20
                        ORDER BY mean_arr_delay DESC NULLS LAST)
       END AS delay_rank_in_month,
       round((mean_arr_delay - avg(mean_arr_delay) OVER (PARTITION BY origin, dest))::numeric, 2)
           AS vs_route_year_mean
FROM routes;
COMMENT ON VIEW mart.route_delay_rank_month IS 'Per route and month: mean delays, rank by mean arrival delay among routes with >= 20 arrivals that month (1 = worst), and the deviation from the route''s mean over all months.';

CREATE VIEW mart.airport_delay_rolling_7d AS
-- Grouped by the fact's keys and named afterwards: grouping every flight by the airport's
-- code sorted the whole year by text collation.
WITH by_key AS (
    SELECT f.origin_airport_key, f.date_key,
           count(*) AS flights,
           count(f.dep_delay_min) AS departed,
           sum(f.dep_delay_min) AS dep_delay_sum,
           count(*) FILTER (WHERE f.dep_delay_min <= 15) AS on_time_departures
    FROM dw.fact_flight AS f
    GROUP BY f.origin_airport_key, f.date_key
), daily AS (
    SELECT o.faa_code AS airport, d.full_date, k.flights, k.departed, k.dep_delay_sum,
           k.on_time_departures
    FROM by_key AS k
    JOIN dw.dim_date AS d ON d.date_key = k.date_key
    JOIN dw.dim_airport AS o ON o.airport_key = k.origin_airport_key
)
SELECT airport, full_date, flights, departed,
       round(dep_delay_sum::numeric / NULLIF(departed, 0), 2) AS mean_dep_delay,
       round(sum(dep_delay_sum) OVER last7 / NULLIF(sum(departed) OVER last7, 0), 2)
           AS mean_dep_delay_7d,
       round(sum(on_time_departures) OVER last7 / NULLIF(sum(departed) OVER last7, 0), 4)
           AS on_time_departure_rate_7d,
       sum(flights) OVER last7 AS flights_7d
FROM daily
WINDOW last7 AS (PARTITION BY airport ORDER BY full_date
                 RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW);
COMMENT ON VIEW mart.airport_delay_rolling_7d IS 'Per origin airport and local date: mean departure delay of the day and over the trailing 7 calendar days (flight-weighted), and the 7-day on-time departure rate.';

CREATE VIEW mart.delay_by_weather AS
-- Flights are first added up per origin and departure hour (about 20,000 in a year), then
-- bucketed: bucketing every flight three times read a million rows. Sums and counts per
-- hour give the same averages exactly.
WITH per_hour AS (
    SELECT f.origin_airport_key, f.weather_hour,
           count(*) AS flights,
           count(f.dep_delay_min) AS departed,
           sum(f.dep_delay_min) AS dep_delay_sum,
           count(*) FILTER (WHERE f.dep_delay_min > 15) AS delayed,
           count(*) FILTER (WHERE f.is_cancelled) AS cancelled
    FROM dw.fact_flight AS f
    GROUP BY f.origin_airport_key, f.weather_hour
), wx AS (
    SELECT h.flights, h.departed, h.dep_delay_sum, h.delayed, h.cancelled,
           w.visib_mi, w.precip_in, w.wind_speed_mph
    FROM per_hour AS h
    JOIN dw.fact_weather_hourly AS w
      ON w.airport_key = h.origin_airport_key AND w.observed_at = h.weather_hour
), buckets AS (
    SELECT 'visibility' AS factor,
           CASE WHEN visib_mi < 1 THEN 0 WHEN visib_mi < 3 THEN 1 WHEN visib_mi < 5 THEN 2
                WHEN visib_mi < 10 THEN 3 ELSE 4 END AS bucket,
           flights, departed, dep_delay_sum, delayed, cancelled
    FROM wx WHERE visib_mi IS NOT NULL
    UNION ALL
    SELECT 'precipitation',
           CASE WHEN precip_in = 0 THEN 0 WHEN precip_in < 0.05 THEN 1
                WHEN precip_in < 0.2 THEN 2 ELSE 3 END,
           flights, departed, dep_delay_sum, delayed, cancelled
    FROM wx WHERE precip_in IS NOT NULL
    UNION ALL
    SELECT 'wind',
           CASE WHEN wind_speed_mph < 5 THEN 0 WHEN wind_speed_mph < 10 THEN 1
                WHEN wind_speed_mph < 15 THEN 2 WHEN wind_speed_mph < 20 THEN 3 ELSE 4 END,
           flights, departed, dep_delay_sum, delayed, cancelled
    FROM wx WHERE wind_speed_mph IS NOT NULL
), agg AS (
    SELECT factor, bucket, sum(flights) AS flights,
           sum(dep_delay_sum)::numeric / NULLIF(sum(departed), 0) AS mean_dep_delay,
           sum(delayed)::numeric / NULLIF(sum(departed), 0) AS delayed_share,
           sum(cancelled)::numeric / sum(flights) AS cancelled_share
    FROM buckets
    GROUP BY factor, bucket
)
SELECT factor, bucket,
       (CASE factor
            WHEN 'visibility' THEN ARRAY['< 1 mi', '1-3 mi', '3-5 mi', '5-10 mi', '>= 10 mi']
            WHEN 'precipitation' THEN ARRAY['0 in', '< 0.05 in', '0.05-0.2 in', '>= 0.2 in']
            ELSE ARRAY['< 5 mph', '5-10 mph', '10-15 mph', '15-20 mph', '>= 20 mph']
        END)[bucket + 1] AS bucket_label,
       flights::bigint AS flights,
       round(flights::numeric / sum(flights) OVER (PARTITION BY factor), 4) AS flight_share,
       round(mean_dep_delay, 2) AS mean_dep_delay,
       round(delayed_share, 4) AS delayed_share,
       round(cancelled_share, 4) AS cancelled_share,
       round(mean_dep_delay - first_value(mean_dep_delay)
                 OVER (PARTITION BY factor ORDER BY
                       CASE WHEN factor = 'visibility' THEN -bucket ELSE bucket END), 2)
           AS vs_best_bucket
FROM agg;
COMMENT ON VIEW mart.delay_by_weather IS 'Departure delay by weather bucket at the origin in the scheduled hour: visibility, precipitation and wind; share of flights per bucket and the delay difference to the fair-weather bucket.';

CREATE VIEW mart.plane_age_effect AS
WITH aged AS (
    SELECT CASE
               WHEN p.year_built IS NULL THEN NULL
               ELSE least((d.year - p.year_built) / 5, 5)
           END AS age_band,
           f.dep_delay_min, f.arr_delay_min, f.is_cancelled
    FROM dw.fact_flight AS f
    JOIN dw.dim_plane AS p ON p.plane_key = f.plane_key
    JOIN dw.dim_date AS d ON d.date_key = f.date_key
), agg AS (
    SELECT age_band, count(*) AS flights,
           avg(dep_delay_min) AS mean_dep_delay,
           avg(arr_delay_min) AS mean_arr_delay,
           avg((arr_delay_min > 15)::int) AS late_share,
           avg(is_cancelled::int) AS cancelled_share
    FROM aged
    GROUP BY age_band
)
SELECT age_band,
       CASE WHEN age_band IS NULL THEN 'unknown'
            WHEN age_band = 5 THEN '25+ years'
            ELSE (age_band * 5) || '-' || (age_band * 5 + 4) || ' years'
       END AS age_label,
       flights,
       round(mean_dep_delay, 2) AS mean_dep_delay,
       round(mean_arr_delay, 2) AS mean_arr_delay,
       round(late_share, 4) AS late_share,
       round(cancelled_share, 4) AS cancelled_share,
       round(mean_arr_delay - sum(mean_arr_delay * flights) OVER () / sum(flights) OVER (), 2)
           AS arr_delay_vs_all,
       rank() OVER (ORDER BY mean_arr_delay DESC NULLS LAST) AS rank_worst
FROM agg;
COMMENT ON VIEW mart.plane_age_effect IS 'Delays by plane age band (5-year bands at the flight year; unknown when the plane or its build year is unknown), compared with the all-flights mean.';

CREATE VIEW mart.kpi AS
SELECT count(*) AS flights,
       count(*) FILTER (WHERE f.is_cancelled) AS cancelled,
       round(avg(f.is_cancelled::int), 4) AS cancelled_share,
       count(*) FILTER (WHERE f.is_diverted) AS diverted,
       round(avg(f.is_diverted::int), 4) AS diverted_share,
       round(avg(f.dep_delay_min), 2) AS mean_dep_delay,
       round(avg(f.arr_delay_min), 2) AS mean_arr_delay,
       round(avg((f.arr_delay_min <= 15)::int), 4) AS on_time_rate,
       -- Distinct keys counted by hashing (count(DISTINCT) sorts every flight); they are
       -- never NULL, so the counts are the same.
       (SELECT count(*) FROM (SELECT DISTINCT airline_key FROM dw.fact_flight) AS c)
           AS carriers,
       (SELECT count(*) FROM (SELECT DISTINCT origin_airport_key, dest_airport_key
                              FROM dw.fact_flight) AS r) AS routes,
       min(f.date_key) AS first_date_key,
       max(f.date_key) AS last_date_key,
       (SELECT count(*) FROM dw.fact_weather_hourly) AS weather_hours
FROM dw.fact_flight AS f;
COMMENT ON VIEW mart.kpi IS 'Headline figures of the warehouse in one row: flights, cancelled and diverted shares, mean delays, on-time rate, carriers, routes, covered dates.';

CREATE VIEW mart.origin_daily AS
SELECT o.faa_code AS origin, d.full_date,
       count(*) AS flights,
       count(*) FILTER (WHERE f.is_cancelled) AS cancelled,
       count(f.dep_delay_min) AS departed,
       count(f.arr_delay_min) AS arrived,
       count(*) FILTER (WHERE f.arr_delay_min <= 15) AS on_time,
       round(count(*) FILTER (WHERE f.arr_delay_min <= 15)::numeric
             / NULLIF(count(f.arr_delay_min), 0), 4) AS on_time_rate,
       round(avg(f.dep_delay_min), 2) AS mean_dep_delay,
       round(avg(f.arr_delay_min), 2) AS mean_arr_delay
FROM dw.fact_flight AS f
JOIN dw.dim_date AS d ON d.date_key = f.date_key
JOIN dw.dim_airport AS o ON o.airport_key = f.origin_airport_key
GROUP BY o.faa_code, d.full_date;
COMMENT ON VIEW mart.origin_daily IS 'Per origin airport and local date: flights, cancelled, on-time arrivals (arrival delay <= 15 min) and their rate among arrived flights, mean departure and arrival delay.';

-- The label is the model's (flightpipe.ml.features.LATE_MINUTES): arrival more than 15 min late.
CREATE VIEW mart.prediction_outcomes AS
SELECT p.model_run_id, p.flight_key, d.full_date, a.carrier_code, f.flight_number,
       o.faa_code AS origin, de.faa_code AS dest, f.sched_dep_at,
       p.probability, p.predicted_label, f.arr_delay_min,
       CASE WHEN f.arr_delay_min IS NOT NULL THEN (f.arr_delay_min > 15)::int END
           AS actual_label,
       p.scored_at
FROM ml.predictions AS p
JOIN dw.fact_flight AS f ON f.flight_key = p.flight_key
JOIN dw.dim_date AS d ON d.date_key = f.date_key
JOIN dw.dim_airline AS a ON a.airline_key = f.airline_key
JOIN dw.dim_airport AS o ON o.airport_key = f.origin_airport_key
JOIN dw.dim_airport AS de ON de.airport_key = f.dest_airport_key;
COMMENT ON VIEW mart.prediction_outcomes IS 'Every kept model score (the newest trainings: FLIGHTPIPE_ML_KEEP_TRAININGS) next to what happened: predicted probability and label (arrival > 15 min late) and the actual arrival delay and label (NULL when cancelled or diverted).';
