-- Weather that lands after its flights (or is corrected later): bring the departure-hour
-- weather of already loaded flights in line with dw.fact_weather_hourly. Limited to the
-- hours of this batch, and guarded, so a replay changes nothing.
UPDATE dw.fact_flight AS f
SET wx_temp_f = w.temp_f, wx_humid_pct = w.humid_pct, wx_wind_speed_mph = w.wind_speed_mph,
    wx_precip_in = w.precip_in, wx_visib_mi = w.visib_mi, load_batch_id = %(batch_id)s
FROM staging.weather AS s
JOIN dw.dim_airport AS a ON a.faa_code = s.origin
JOIN dw.fact_weather_hourly AS w
    ON w.airport_key = a.airport_key AND w.observed_at = s.observed_at AT TIME ZONE 'UTC'
WHERE f.origin_airport_key = w.airport_key
  AND f.weather_hour = w.observed_at
  AND (f.wx_temp_f, f.wx_humid_pct, f.wx_wind_speed_mph, f.wx_precip_in, f.wx_visib_mi)
      IS DISTINCT FROM (w.temp_f, w.humid_pct, w.wind_speed_mph, w.precip_in, w.visib_mi);
