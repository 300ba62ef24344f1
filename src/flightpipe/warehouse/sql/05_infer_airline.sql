-- Carriers seen in flights but in no airlines reference yet: inferred members.
INSERT INTO dw.dim_airline (airline_key, carrier_code, name, is_inferred, member_source,
                            load_batch_id)
SELECT dw.member_key(c.carrier), c.carrier, 'Unknown airline ' || c.carrier, true, 'inferred', %(batch_id)s
FROM (SELECT DISTINCT carrier FROM staging.flights) AS c
WHERE NOT EXISTS (SELECT 1 FROM dw.dim_airline AS d WHERE d.carrier_code = c.carrier)
ORDER BY c.carrier;
