-- Flights whose key is not in dw: a plain insert, nothing to compare with (the fast path).
-- Two natural keys with one hash fail here on the primary key; one natural key under a
-- second key fails on the natural key's UNIQUE constraint: a collision is never silent.
INSERT INTO dw.fact_flight (flight_key, date_key, airline_key, flight_number,
                            origin_airport_key, dest_airport_key, plane_key, sched_dep_time,
                            dep_time, sched_arr_time, arr_time, sched_dep_at, dep_at,
                            sched_arr_at, arr_at, weather_hour, dep_delay_min, arr_delay_min,
                            air_time_min, distance_mi, is_cancelled, is_diverted, wx_temp_f,
                            wx_humid_pct, wx_wind_speed_mph, wx_precip_in, wx_visib_mi,
                            src_topic, src_partition, src_offset, load_batch_id)
SELECT s.flight_key, s.date_key, s.airline_key, s.flight_number, s.origin_airport_key,
       s.dest_airport_key, s.plane_key, s.sched_dep_time, s.dep_time, s.sched_arr_time,
       s.arr_time, s.sched_dep_at, s.dep_at, s.sched_arr_at, s.arr_at, s.weather_hour,
       s.dep_delay_min, s.arr_delay_min, s.air_time_min, s.distance_mi, s.is_cancelled,
       s.is_diverted, s.wx_temp_f, s.wx_humid_pct, s.wx_wind_speed_mph, s.wx_precip_in,
       s.wx_visib_mi, s.src_topic, s.src_partition, s.src_offset, %(batch_id)s
FROM staging.flights_resolved AS s
WHERE NOT EXISTS (SELECT 1 FROM dw.fact_flight AS f WHERE f.flight_key = s.flight_key)
ORDER BY s.flight_key;
