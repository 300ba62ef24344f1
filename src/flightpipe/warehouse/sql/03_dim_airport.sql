-- Reference airports: insert new codes, complete inferred members, change only what differs.
MERGE INTO dw.dim_airport AS d
USING (SELECT * FROM staging.airports WHERE member_source = 'reference') AS s
    ON d.faa_code = s.faa
WHEN MATCHED AND (d.name, d.latitude, d.longitude, d.altitude_ft, d.utc_offset_h, d.dst_rule,
                  d.tzone, d.tzone_source, d.is_inferred, d.member_source)
                 IS DISTINCT FROM
                 (s.name, s.latitude::numeric(9, 6), s.longitude::numeric(9, 6), s.altitude_ft,
                  s.utc_offset_h, s.dst_rule::char(1), s.tzone, s.tzone_source, false,
                  'reference') THEN
    UPDATE SET name = s.name, latitude = s.latitude, longitude = s.longitude,
               altitude_ft = s.altitude_ft, utc_offset_h = s.utc_offset_h,
               dst_rule = s.dst_rule, tzone = s.tzone, tzone_source = s.tzone_source,
               is_inferred = false, member_source = 'reference', load_batch_id = %(batch_id)s
WHEN NOT MATCHED THEN
    INSERT (airport_key, faa_code, name, latitude, longitude, altitude_ft, utc_offset_h, dst_rule, tzone,
            tzone_source, is_inferred, member_source, load_batch_id)
    VALUES (dw.member_key(s.faa), s.faa, s.name, s.latitude, s.longitude, s.altitude_ft, s.utc_offset_h, s.dst_rule,
            s.tzone, s.tzone_source, false, 'reference', %(batch_id)s);
