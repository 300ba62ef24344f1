-- Staging: UNLOGGED because its content is rebuilt from the landing zone by every load, so
-- WAL for it would only slow COPY down. Columns hold transformed values with natural codes;
-- surrogate keys are resolved by the upsert.
-- depends: 0002_meta 0004_facts

CREATE UNLOGGED TABLE staging.flights (
    year                smallint NOT NULL,
    month               smallint NOT NULL,
    day                 smallint NOT NULL,
    carrier             text NOT NULL,
    flight_number       smallint NOT NULL,
    origin              text NOT NULL,
    dest                text NOT NULL,
    tailnum             text,
    sched_dep_time      smallint NOT NULL,
    dep_time            smallint,
    sched_arr_time      smallint NOT NULL,
    arr_time            smallint,
    sched_dep_at        timestamptz NOT NULL,
    dep_at              timestamptz,
    sched_arr_at        timestamptz,
    arr_at              timestamptz,
    weather_hour        timestamptz NOT NULL,
    dep_delay_min       smallint,
    arr_delay_min       smallint,
    air_time_min        smallint,
    distance_mi         smallint NOT NULL,
    is_cancelled        boolean NOT NULL,
    is_diverted         boolean NOT NULL,
    wx_temp_f           double precision,
    wx_humid_pct        double precision,
    wx_wind_speed_mph   double precision,
    wx_precip_in        double precision,
    wx_visib_mi         double precision,
    src_topic           text NOT NULL,
    src_partition       integer NOT NULL,
    src_offset          bigint NOT NULL
);
COMMENT ON TABLE staging.flights IS 'Transformed, deduplicated flights of the current load batch (natural codes, UTC times, flags).';

CREATE UNLOGGED TABLE staging.weather (
    origin              text NOT NULL,
    observed_at         timestamptz NOT NULL,
    local_date          date NOT NULL,
    local_hour          smallint NOT NULL,
    temp_f              double precision,
    dewp_f              double precision,
    humid_pct           double precision,
    wind_dir_deg        smallint,
    wind_speed_mph      double precision,
    wind_gust_mph       double precision,
    precip_in           double precision,
    pressure_mb         double precision,
    visib_mi            double precision,
    src_topic           text NOT NULL,
    src_partition       integer NOT NULL,
    src_offset          bigint NOT NULL
);
COMMENT ON TABLE staging.weather IS 'Transformed, deduplicated hourly weather of the current load batch.';

CREATE UNLOGGED TABLE staging.airlines (
    carrier             text NOT NULL,
    name                text NOT NULL,
    src_topic           text NOT NULL,
    src_partition       integer NOT NULL,
    src_offset          bigint NOT NULL
);
COMMENT ON TABLE staging.airlines IS 'Airlines reference rows of the current load batch.';

CREATE UNLOGGED TABLE staging.airports (
    faa                 text NOT NULL,
    name                text NOT NULL,
    latitude            double precision,
    longitude           double precision,
    altitude_ft         integer,
    utc_offset_h        smallint,
    dst_rule            text,
    tzone               text,
    tzone_source        text,
    member_source       text NOT NULL,
    src_topic           text,
    src_partition       integer,
    src_offset          bigint
);
COMMENT ON TABLE staging.airports IS 'Airports reference rows of the current batch, plus airportsdata candidates (member_source = airportsdata) used only for codes missing from the reference.';

CREATE UNLOGGED TABLE staging.planes (
    tailnum             text NOT NULL,
    year_built          smallint,
    aircraft_type       text,
    manufacturer        text,
    model               text,
    engines             smallint,
    seats               smallint,
    speed_mph           smallint,
    engine_type         text,
    src_topic           text NOT NULL,
    src_partition       integer NOT NULL,
    src_offset          bigint NOT NULL
);
COMMENT ON TABLE staging.planes IS 'Planes reference rows of the current load batch.';

-- Resolved views: staging rows with surrogate keys looked up and values cast to the exact
-- dw column types, so the guarded upserts compare like with like (a float compared with a
-- numeric would always look changed). Unknown codes fall back to member 0, never dropped.
CREATE VIEW staging.flights_resolved AS
SELECT
    (s.year * 10000 + s.month * 100 + s.day)::integer AS date_key,
    COALESCE(a.airline_key, 0::smallint) AS airline_key,
    s.flight_number,
    COALESCE(o.airport_key, 0::smallint) AS origin_airport_key,
    COALESCE(d.airport_key, 0::smallint) AS dest_airport_key,
    COALESCE(p.plane_key, 0) AS plane_key,
    s.sched_dep_time, s.dep_time, s.sched_arr_time, s.arr_time,
    s.sched_dep_at, s.dep_at, s.sched_arr_at, s.arr_at, s.weather_hour,
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
    ON w.airport_key = o.airport_key AND w.observed_at = s.weather_hour;
COMMENT ON VIEW staging.flights_resolved IS 'staging.flights with dimension keys resolved and dw types; weather falls back to dw.fact_weather_hourly when the batch had none for that hour.';

CREATE VIEW staging.weather_resolved AS
SELECT
    COALESCE(o.airport_key, 0::smallint) AS airport_key,
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
FROM staging.weather AS s
LEFT JOIN dw.dim_airport AS o ON o.faa_code = s.origin;
COMMENT ON VIEW staging.weather_resolved IS 'staging.weather with the airport key resolved and dw types.';
