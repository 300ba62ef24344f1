-- Hourly weather not in dw yet: a plain insert, nothing to compare with (the fast path).
INSERT INTO dw.fact_weather_hourly (airport_key, observed_at, date_key, local_hour, temp_f,
                                    dewp_f, humid_pct, wind_dir_deg, wind_speed_mph,
                                    wind_gust_mph, precip_in, pressure_mb, visib_mi,
                                    src_topic, src_partition, src_offset, load_batch_id)
SELECT s.airport_key, s.observed_at, s.date_key, s.local_hour, s.temp_f, s.dewp_f,
       s.humid_pct, s.wind_dir_deg, s.wind_speed_mph, s.wind_gust_mph, s.precip_in,
       s.pressure_mb, s.visib_mi, s.src_topic, s.src_partition, s.src_offset, %(batch_id)s
FROM staging.weather_resolved AS s
WHERE NOT EXISTS (SELECT 1 FROM dw.fact_weather_hourly AS f
                  WHERE f.airport_key = s.airport_key AND f.observed_at = s.observed_at);
