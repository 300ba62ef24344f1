-- Airports seen in flights or weather but in no airports reference yet: inferred members,
-- from the airportsdata candidates when the code is there (name, position, IANA zone).
INSERT INTO dw.dim_airport (airport_key, faa_code, name, latitude, longitude, altitude_ft, tzone,
                            tzone_source, is_inferred, member_source, load_batch_id)
SELECT dw.member_key(c.code), c.code,
       COALESCE(k.name, 'Unknown airport ' || c.code),
       k.latitude, k.longitude, k.altitude_ft, k.tzone,
       CASE WHEN k.tzone IS NOT NULL THEN 'airportsdata' END,
       true,
       CASE WHEN k.faa IS NOT NULL THEN 'airportsdata' ELSE 'inferred' END,
       %(batch_id)s
FROM (
    SELECT origin AS code FROM staging.flights
    UNION SELECT dest FROM staging.flights
    UNION SELECT origin FROM staging.weather
) AS c
LEFT JOIN staging.airports AS k ON k.faa = c.code AND k.member_source = 'airportsdata'
WHERE NOT EXISTS (SELECT 1 FROM dw.dim_airport AS d WHERE d.faa_code = c.code)
ORDER BY c.code;
