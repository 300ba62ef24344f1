-- Reference planes: insert new tail numbers, complete inferred members, change only what differs.
MERGE INTO dw.dim_plane AS d
USING staging.planes AS s ON d.tailnum = s.tailnum
WHEN MATCHED AND (d.year_built, d.aircraft_type, d.manufacturer, d.model, d.engines, d.seats,
                  d.speed_mph, d.engine_type, d.is_inferred, d.member_source)
                 IS DISTINCT FROM
                 (s.year_built, s.aircraft_type, s.manufacturer, s.model, s.engines, s.seats,
                  s.speed_mph, s.engine_type, false, 'reference') THEN
    UPDATE SET year_built = s.year_built, aircraft_type = s.aircraft_type,
               manufacturer = s.manufacturer, model = s.model, engines = s.engines,
               seats = s.seats, speed_mph = s.speed_mph, engine_type = s.engine_type,
               is_inferred = false, member_source = 'reference', load_batch_id = %(batch_id)s
WHEN NOT MATCHED THEN
    INSERT (plane_key, tailnum, year_built, aircraft_type, manufacturer, model, engines, seats, speed_mph,
            engine_type, is_inferred, member_source, load_batch_id)
    VALUES (dw.member_key(s.tailnum), s.tailnum, s.year_built, s.aircraft_type, s.manufacturer, s.model, s.engines,
            s.seats, s.speed_mph, s.engine_type, false, 'reference', %(batch_id)s);
