-- Resolved views over the staging tables. Current state, not history: applied after every
-- migration run when this file changes or the staging tables were rebuilt from the contract
-- (flightpipe.warehouse.current). Staging rows with surrogate keys looked
-- up and values cast to the exact dw column types, so the guarded upserts compare like with
-- like (a float compared with a numeric would always look changed). Unknown codes fall back
-- to member 0, never dropped. Staging keeps UTC instants as naive timestamps (binary COPY of
-- naive values is faster); the views turn them back into timestamptz.
DROP VIEW IF EXISTS staging.flights_resolved, staging.weather_resolved;

CREATE VIEW staging.flights_resolved AS
SELECT
    (s.year * 10000 + s.month * 100 + s.day)::integer AS date_key,
    COALESCE(a.airline_key, 0::smallint) AS airline_key,
    s.flight_number,
    COALESCE(o.airport_key, 0::smallint) AS origin_airport_key,
    COALESCE(d.airport_key, 0::smallint) AS dest_airport_key,
    COALESCE(p.plane_key, 0) AS plane_key,
    s.sched_dep_time, s.dep_time, s.sched_arr_time, s.arr_time,
    s.sched_dep_at AT TIME ZONE 'UTC' AS sched_dep_at,
    s.dep_at AT TIME ZONE 'UTC' AS dep_at,
    s.sched_arr_at AT TIME ZONE 'UTC' AS sched_arr_at,
    s.arr_at AT TIME ZONE 'UTC' AS arr_at,
    s.weather_hour AT TIME ZONE 'UTC' AS weather_hour,
    s.dep_delay_min, s.arr_delay_min, s.air_time_min, s.distance_mi,
    s.is_cancelled, s.is_diverted,
    COALESCE(s.wx_temp_f, w.temp_f::double precision)::numeric(5, 2) AS wx_temp_f,
    COALESCE(s.wx_humid_pct, w.humid_pct::double precision)::numeric(5, 2) AS wx_humid_pct,
    COALESCE(s.wx_wind_speed_mph, w.wind_speed_mph::double precision)::numeric(8, 5)
        AS wx_wind_speed_mph,
    COALESCE(s.wx_precip_in, w.precip_in::double precision)::numeric(5, 2) AS wx_precip_in,
    COALESCE(s.wx_visib_mi, w.visib_mi::double precision)::numeric(5, 2) AS wx_visib_mi,
    s.src_topic, s.src_partition, s.src_offset
FROM staging.flights AS s
LEFT JOIN dw.dim_airline AS a ON a.carrier_code = s.carrier
LEFT JOIN dw.dim_airport AS o ON o.faa_code = s.origin
LEFT JOIN dw.dim_airport AS d ON d.faa_code = s.dest
LEFT JOIN dw.dim_plane AS p ON p.tailnum = s.tailnum
LEFT JOIN dw.fact_weather_hourly AS w
    ON w.airport_key = o.airport_key AND w.observed_at = s.weather_hour AT TIME ZONE 'UTC';
COMMENT ON VIEW staging.flights_resolved IS 'staging.flights with dimension keys resolved and dw types; weather falls back to dw.fact_weather_hourly when the batch had none for that hour.';

CREATE VIEW staging.weather_resolved AS
SELECT
    COALESCE(o.airport_key, 0::smallint) AS airport_key,
    s.observed_at AT TIME ZONE 'UTC' AS observed_at,
    (extract(year FROM s.local_date) * 10000 + extract(month FROM s.local_date) * 100
        + extract(day FROM s.local_date))::integer AS date_key,
    s.local_hour,
    s.temp_f::numeric(5, 2) AS temp_f,
    s.dewp_f::numeric(5, 2) AS dewp_f,
    s.humid_pct::numeric(5, 2) AS humid_pct,
    s.wind_dir_deg,
    s.wind_speed_mph::numeric(8, 5) AS wind_speed_mph,
    s.wind_gust_mph::numeric(8, 5) AS wind_gust_mph,
    s.precip_in::numeric(5, 2) AS precip_in,
    s.pressure_mb::numeric(6, 1) AS pressure_mb,
    s.visib_mi::numeric(5, 2) AS visib_mi,
    s.src_topic, s.src_partition, s.src_offset
FROM staging.weather AS s
LEFT JOIN dw.dim_airport AS o ON o.faa_code = s.origin;
COMMENT ON VIEW staging.weather_resolved IS 'staging.weather with the airport key resolved and dw types.';
