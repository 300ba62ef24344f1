-- Calendar rows for every local date the batch touches; existing dates are left alone.
INSERT INTO dw.dim_date (date_key, full_date, year, quarter, month, month_name, day_of_month,
                         day_of_week, day_name, iso_week, is_weekend)
SELECT (extract(year FROM d) * 10000 + extract(month FROM d) * 100 + extract(day FROM d))::integer,
       d,
       extract(year FROM d)::smallint,
       extract(quarter FROM d)::smallint,
       extract(month FROM d)::smallint,
       trim(to_char(d, 'FMMonth')),
       extract(day FROM d)::smallint,
       extract(isodow FROM d)::smallint,
       trim(to_char(d, 'FMDay')),
       extract(week FROM d)::smallint,
       extract(isodow FROM d) >= 6
FROM (
    SELECT make_date(year, month, day) AS d FROM staging.flights
    UNION
    SELECT local_date FROM staging.weather
) AS dates
ORDER BY d
ON CONFLICT (date_key) DO NOTHING;
