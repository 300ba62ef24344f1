-- Hourly weather already in dw: guarded update on (airport, UTC hour). Rows whose values did
-- not change are not touched (a replay writes nothing); an older delivery from the same
-- partition never overwrites a newer one. New hours are the next step's plain insert.
UPDATE dw.fact_weather_hourly AS f
SET date_key = s.date_key, local_hour = s.local_hour, temp_f = s.temp_f, dewp_f = s.dewp_f,
    humid_pct = s.humid_pct, wind_dir_deg = s.wind_dir_deg, wind_speed_mph = s.wind_speed_mph,
    wind_gust_mph = s.wind_gust_mph, precip_in = s.precip_in, pressure_mb = s.pressure_mb,
    visib_mi = s.visib_mi, src_topic = s.src_topic, src_partition = s.src_partition,
    src_offset = s.src_offset, load_batch_id = %(batch_id)s
FROM staging.weather_resolved AS s
WHERE f.airport_key = s.airport_key AND f.observed_at = s.observed_at
  AND (f.date_key, f.local_hour, f.temp_f, f.dewp_f, f.humid_pct, f.wind_dir_deg,
       f.wind_speed_mph, f.wind_gust_mph, f.precip_in, f.pressure_mb, f.visib_mi)
      IS DISTINCT FROM
      (s.date_key, s.local_hour, s.temp_f, s.dewp_f, s.humid_pct, s.wind_dir_deg,
       s.wind_speed_mph, s.wind_gust_mph, s.precip_in, s.pressure_mb, s.visib_mi)
  AND NOT (f.src_topic = s.src_topic AND f.src_partition = s.src_partition
           AND f.src_offset > s.src_offset);
