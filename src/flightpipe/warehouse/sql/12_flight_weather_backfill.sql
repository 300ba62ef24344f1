-- Weather that lands after its flights (or is corrected later): bring the departure-hour
-- weather of flights loaded earlier in line with dw.fact_weather_hourly, guarded, so a
-- replay changes nothing. Only the hours this batch changed (load_batch_id): every other
-- hour already agreed with its flights after the load that last wrote it. Only flights this
-- batch did not write: those took the hour's weather from dw in the steps above.
UPDATE dw.fact_flight AS f
SET wx_temp_f = w.temp_f, wx_humid_pct = w.humid_pct, wx_wind_speed_mph = w.wind_speed_mph,
    wx_precip_in = w.precip_in, wx_visib_mi = w.visib_mi, load_batch_id = %(batch_id)s
FROM dw.fact_weather_hourly AS w
WHERE w.load_batch_id = %(batch_id)s
  AND f.load_batch_id <> %(batch_id)s
  AND f.origin_airport_key = w.airport_key
  AND f.weather_hour = w.observed_at
  AND (f.wx_temp_f, f.wx_humid_pct, f.wx_wind_speed_mph, f.wx_precip_in, f.wx_visib_mi)
      IS DISTINCT FROM (w.temp_f, w.humid_pct, w.wind_speed_mph, w.precip_in, w.visib_mi);
