-- Facts. fact_flight is not partitioned: ml.predictions references its surrogate key, and a
-- foreign key to a partitioned table would have to carry the partition key too.
-- depends: 0003_dimensions

CREATE TABLE dw.fact_flight (
    flight_key          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    date_key            integer NOT NULL REFERENCES dw.dim_date (date_key),
    airline_key         smallint NOT NULL REFERENCES dw.dim_airline (airline_key),
    flight_number       smallint NOT NULL CHECK (flight_number > 0),
    origin_airport_key  smallint NOT NULL REFERENCES dw.dim_airport (airport_key),
    dest_airport_key    smallint NOT NULL REFERENCES dw.dim_airport (airport_key),
    plane_key           integer NOT NULL REFERENCES dw.dim_plane (plane_key),
    sched_dep_time      smallint NOT NULL
                        CHECK (sched_dep_time BETWEEN 0 AND 2359 AND sched_dep_time % 100 < 60),
    dep_time            smallint CHECK (dep_time BETWEEN 0 AND 2400 AND dep_time % 100 < 60),
    sched_arr_time      smallint NOT NULL
                        CHECK (sched_arr_time BETWEEN 0 AND 2359 AND sched_arr_time % 100 < 60),
    arr_time            smallint CHECK (arr_time BETWEEN 0 AND 2400 AND arr_time % 100 < 60),
    sched_dep_at        timestamptz NOT NULL,
    dep_at              timestamptz,
    sched_arr_at        timestamptz,
    arr_at              timestamptz,
    weather_hour        timestamptz NOT NULL,
    dep_delay_min       smallint CHECK (dep_delay_min BETWEEN -1440 AND 2880),
    arr_delay_min       smallint CHECK (arr_delay_min BETWEEN -1440 AND 2880),
    air_time_min        smallint CHECK (air_time_min BETWEEN 1 AND 1440),
    distance_mi         smallint NOT NULL CHECK (distance_mi BETWEEN 1 AND 12000),
    is_cancelled        boolean NOT NULL,
    is_diverted         boolean NOT NULL,
    wx_temp_f           numeric(5, 2),
    wx_humid_pct        numeric(5, 2) CHECK (wx_humid_pct BETWEEN 0 AND 100),
    wx_wind_speed_mph   numeric(8, 5) CHECK (wx_wind_speed_mph >= 0),
    wx_precip_in        numeric(5, 2) CHECK (wx_precip_in >= 0),
    wx_visib_mi         numeric(5, 2) CHECK (wx_visib_mi >= 0),
    src_topic           text NOT NULL,
    src_partition       integer NOT NULL CHECK (src_partition >= 0),
    src_offset          bigint NOT NULL CHECK (src_offset >= 0),
    load_batch_id       bigint NOT NULL REFERENCES meta.load_batches (batch_id),
    CONSTRAINT fact_flight_natural_key
        UNIQUE (date_key, airline_key, flight_number, origin_airport_key),
    CONSTRAINT fact_flight_cancelled_has_no_departure
        CHECK (is_cancelled = (dep_time IS NULL) AND is_cancelled = (dep_at IS NULL)),
    CONSTRAINT fact_flight_cancelled_or_diverted CHECK (NOT (is_cancelled AND is_diverted)),
    CONSTRAINT fact_flight_weather_hour
        CHECK (date_trunc('hour', weather_hour AT TIME ZONE 'UTC') = weather_hour AT TIME ZONE 'UTC'
               AND sched_dep_at >= weather_hour
               AND sched_dep_at < weather_hour + interval '1 hour')
);
CREATE INDEX fact_flight_route_idx ON dw.fact_flight (origin_airport_key, dest_airport_key, date_key);
CREATE INDEX fact_flight_weather_idx ON dw.fact_flight (origin_airport_key, weather_hour);
CREATE INDEX fact_flight_plane_idx ON dw.fact_flight (plane_key);
COMMENT ON TABLE dw.fact_flight IS 'One row per scheduled flight (grain). Natural key: local date, carrier, flight number, origin. Every landed flight is kept: cancelled and diverted flights are flagged, unknown codes point to unknown/inferred dimension members.';
COMMENT ON COLUMN dw.fact_flight.flight_key IS 'Surrogate key (referenced by ml.predictions).';
COMMENT ON COLUMN dw.fact_flight.date_key IS 'Local scheduled departure date (source year, month, day) -> dim_date.';
COMMENT ON COLUMN dw.fact_flight.airline_key IS 'Carrier -> dim_airline.';
COMMENT ON COLUMN dw.fact_flight.flight_number IS 'Flight number (degenerate dimension).';
COMMENT ON COLUMN dw.fact_flight.origin_airport_key IS 'Origin airport -> dim_airport (origin role).';
COMMENT ON COLUMN dw.fact_flight.dest_airport_key IS 'Destination airport -> dim_airport (destination role).';
COMMENT ON COLUMN dw.fact_flight.plane_key IS 'Aircraft -> dim_plane; 0 when the tail number is missing.';
COMMENT ON COLUMN dw.fact_flight.sched_dep_time IS 'Scheduled departure, local hhmm at the origin, as in the source.';
COMMENT ON COLUMN dw.fact_flight.dep_time IS 'Actual departure, local hhmm at the origin; NULL when cancelled.';
COMMENT ON COLUMN dw.fact_flight.sched_arr_time IS 'Scheduled arrival, local hhmm at the destination, as in the source.';
COMMENT ON COLUMN dw.fact_flight.arr_time IS 'Actual arrival, local hhmm at the destination.';
COMMENT ON COLUMN dw.fact_flight.sched_dep_at IS 'Scheduled departure, UTC.';
COMMENT ON COLUMN dw.fact_flight.dep_at IS 'Actual departure, UTC (scheduled + departure delay); NULL when cancelled.';
COMMENT ON COLUMN dw.fact_flight.sched_arr_at IS 'Scheduled arrival, UTC, using the destination time zone and rolling past midnight; NULL only if the destination time zone is unknown.';
COMMENT ON COLUMN dw.fact_flight.arr_at IS 'Actual arrival, UTC; NULL when cancelled or diverted without an arrival time.';
COMMENT ON COLUMN dw.fact_flight.weather_hour IS 'Scheduled departure floored to the UTC hour: join key to fact_weather_hourly with origin_airport_key.';
COMMENT ON COLUMN dw.fact_flight.dep_delay_min IS 'Departure delay, minutes (negative = early).';
COMMENT ON COLUMN dw.fact_flight.arr_delay_min IS 'Arrival delay, minutes (negative = early); NULL when cancelled or diverted.';
COMMENT ON COLUMN dw.fact_flight.air_time_min IS 'Minutes in the air.';
COMMENT ON COLUMN dw.fact_flight.distance_mi IS 'Distance between the airports, miles.';
COMMENT ON COLUMN dw.fact_flight.is_cancelled IS 'No actual departure time.';
COMMENT ON COLUMN dw.fact_flight.is_diverted IS 'Departed but no arrival delay or arrival time at the destination.';
COMMENT ON COLUMN dw.fact_flight.wx_temp_f IS 'Temperature at the origin in the departure hour, F (from the hourly weather join).';
COMMENT ON COLUMN dw.fact_flight.wx_humid_pct IS 'Relative humidity at the origin in the departure hour, %.';
COMMENT ON COLUMN dw.fact_flight.wx_wind_speed_mph IS 'Wind speed at the origin in the departure hour, mph.';
COMMENT ON COLUMN dw.fact_flight.wx_precip_in IS 'Precipitation at the origin in the departure hour, inches.';
COMMENT ON COLUMN dw.fact_flight.wx_visib_mi IS 'Visibility at the origin in the departure hour, miles.';
COMMENT ON COLUMN dw.fact_flight.src_topic IS 'Lineage: Kafka topic of the event that gave the current values.';
COMMENT ON COLUMN dw.fact_flight.src_partition IS 'Lineage: Kafka partition of that event.';
COMMENT ON COLUMN dw.fact_flight.src_offset IS 'Lineage: Kafka offset of that event.';
COMMENT ON COLUMN dw.fact_flight.load_batch_id IS 'Lineage: load batch that inserted or last changed the row.';

CREATE TABLE dw.fact_weather_hourly (
    airport_key         smallint NOT NULL REFERENCES dw.dim_airport (airport_key),
    observed_at         timestamptz NOT NULL,
    date_key            integer NOT NULL REFERENCES dw.dim_date (date_key),
    local_hour          smallint NOT NULL CHECK (local_hour BETWEEN 0 AND 23),
    temp_f              numeric(5, 2) CHECK (temp_f BETWEEN -80 AND 140),
    dewp_f              numeric(5, 2) CHECK (dewp_f BETWEEN -100 AND 100),
    humid_pct           numeric(5, 2) CHECK (humid_pct BETWEEN 0 AND 100),
    wind_dir_deg        smallint CHECK (wind_dir_deg BETWEEN 0 AND 360),
    wind_speed_mph      numeric(8, 5) CHECK (wind_speed_mph BETWEEN 0 AND 300),
    wind_gust_mph       numeric(8, 5) CHECK (wind_gust_mph BETWEEN 0 AND 300),
    precip_in           numeric(5, 2) CHECK (precip_in BETWEEN 0 AND 20),
    pressure_mb         numeric(6, 1) CHECK (pressure_mb BETWEEN 850 AND 1100),
    visib_mi            numeric(5, 2) CHECK (visib_mi BETWEEN 0 AND 100),
    src_topic           text NOT NULL,
    src_partition       integer NOT NULL CHECK (src_partition >= 0),
    src_offset          bigint NOT NULL CHECK (src_offset >= 0),
    load_batch_id       bigint NOT NULL REFERENCES meta.load_batches (batch_id),
    PRIMARY KEY (airport_key, observed_at),
    CONSTRAINT fact_weather_hourly_whole_hour
        CHECK (date_trunc('hour', observed_at AT TIME ZONE 'UTC') = observed_at AT TIME ZONE 'UTC')
);
CREATE INDEX fact_weather_hourly_date_idx ON dw.fact_weather_hourly (date_key);
COMMENT ON TABLE dw.fact_weather_hourly IS 'Hourly weather observation, grain: airport x UTC hour (UTC avoids the duplicate local hour at the DST change).';
COMMENT ON COLUMN dw.fact_weather_hourly.airport_key IS 'Observing airport -> dim_airport.';
COMMENT ON COLUMN dw.fact_weather_hourly.observed_at IS 'Observation hour, UTC.';
COMMENT ON COLUMN dw.fact_weather_hourly.date_key IS 'Local date of the observation -> dim_date.';
COMMENT ON COLUMN dw.fact_weather_hourly.local_hour IS 'Local hour of the observation, as in the source.';
COMMENT ON COLUMN dw.fact_weather_hourly.temp_f IS 'Temperature, F.';
COMMENT ON COLUMN dw.fact_weather_hourly.dewp_f IS 'Dew point, F.';
COMMENT ON COLUMN dw.fact_weather_hourly.humid_pct IS 'Relative humidity, %.';
COMMENT ON COLUMN dw.fact_weather_hourly.wind_dir_deg IS 'Wind direction, degrees.';
COMMENT ON COLUMN dw.fact_weather_hourly.wind_speed_mph IS 'Wind speed, mph; an impossible source value (over 300 mph) is cleaned to NULL.';
COMMENT ON COLUMN dw.fact_weather_hourly.wind_gust_mph IS 'Wind gust, mph.';
COMMENT ON COLUMN dw.fact_weather_hourly.precip_in IS 'Precipitation, inches.';
COMMENT ON COLUMN dw.fact_weather_hourly.pressure_mb IS 'Sea level pressure, millibars.';
COMMENT ON COLUMN dw.fact_weather_hourly.visib_mi IS 'Visibility, miles.';
COMMENT ON COLUMN dw.fact_weather_hourly.src_topic IS 'Lineage: Kafka topic.';
COMMENT ON COLUMN dw.fact_weather_hourly.src_partition IS 'Lineage: Kafka partition.';
COMMENT ON COLUMN dw.fact_weather_hourly.src_offset IS 'Lineage: Kafka offset.';
COMMENT ON COLUMN dw.fact_weather_hourly.load_batch_id IS 'Lineage: load batch that inserted or last changed the row.';
