-- Reference airlines: insert new codes, complete inferred members, change only what differs.
MERGE INTO dw.dim_airline AS d
USING staging.airlines AS s ON d.carrier_code = s.carrier
WHEN MATCHED AND (d.name, d.is_inferred, d.member_source)
                 IS DISTINCT FROM (s.name, false, 'reference') THEN
    UPDATE SET name = s.name, is_inferred = false, member_source = 'reference',
               load_batch_id = %(batch_id)s
WHEN NOT MATCHED THEN
    INSERT (airline_key, carrier_code, name, is_inferred, member_source, load_batch_id)
    VALUES (dw.member_key(s.carrier), s.carrier, s.name, false, 'reference', %(batch_id)s);
