-- Resolved views over the staging tables. Current state, not history: applied after every
-- migration run when this file changes or the staging tables were rebuilt from the contract
-- (flightpipe.warehouse.current). Surrogate keys are computed, not looked up: they are a
-- function of the natural key (dw.member_key, dw.flight_key; migration 0023), and the load
-- creates the dimension members a batch uses before its facts, so every key exists (the
-- foreign keys and the data checks make sure). Values are cast to the exact dw column types,
-- so the guarded upserts compare like with like (a float compared with a numeric would
-- always look changed). Staging keeps instants as timestamptz already (binary COPY sends the
-- same microseconds either way), so the views compute no time zone conversion per row.
DROP VIEW IF EXISTS staging.flights_resolved, staging.weather_resolved;

CREATE VIEW staging.flights_resolved AS
SELECT
    dw.flight_key(s.year, s.month, s.day, s.carrier, s.flight_number, s.origin) AS flight_key,
    (s.year * 10000 + s.month * 100 + s.day)::integer AS date_key,
    dw.member_key(s.carrier) AS airline_key,
    s.flight_number,
    dw.member_key(s.origin) AS origin_airport_key,
    dw.member_key(s.dest) AS dest_airport_key,
    COALESCE(dw.member_key(s.tailnum), 0) AS plane_key,
    s.sched_dep_time, s.dep_time, s.sched_arr_time, s.arr_time,
    s.sched_dep_at, s.dep_at, s.sched_arr_at, s.arr_at, s.weather_hour,
    s.dep_delay_min, s.arr_delay_min, s.air_time_min, s.distance_mi,
    s.is_cancelled, s.is_diverted,
    -- The hour's weather in dw when there is one (the batch's own weather is in dw by now,
    -- unless a newer delivery is); the transform's join otherwise. The same rule as the
    -- backfill of flights loaded before their weather, so the two never disagree.
    CASE WHEN w.airport_key IS NULL THEN s.wx_temp_f::numeric(5, 2) ELSE w.temp_f END
        AS wx_temp_f,
    CASE WHEN w.airport_key IS NULL THEN s.wx_humid_pct::numeric(5, 2) ELSE w.humid_pct END
        AS wx_humid_pct,
    CASE WHEN w.airport_key IS NULL THEN s.wx_wind_speed_mph::numeric(8, 5)
         ELSE w.wind_speed_mph END AS wx_wind_speed_mph,
    CASE WHEN w.airport_key IS NULL THEN s.wx_precip_in::numeric(5, 2) ELSE w.precip_in END
        AS wx_precip_in,
    CASE WHEN w.airport_key IS NULL THEN s.wx_visib_mi::numeric(5, 2) ELSE w.visib_mi END
        AS wx_visib_mi,
    s.src_topic, s.src_partition, s.src_offset
FROM staging.flights AS s
LEFT JOIN dw.fact_weather_hourly AS w
    ON w.airport_key = dw.member_key(s.origin)
   AND w.observed_at = s.weather_hour;
COMMENT ON VIEW staging.flights_resolved IS 'staging.flights with its surrogate keys and dw types; the departure-hour weather from dw.fact_weather_hourly when it has the hour.';

CREATE VIEW staging.weather_resolved AS
SELECT
    dw.member_key(s.origin) AS airport_key,
    s.observed_at,
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
FROM staging.weather AS s;
COMMENT ON VIEW staging.weather_resolved IS 'staging.weather with its airport key and dw types.';
