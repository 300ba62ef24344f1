-- Surrogate keys become a function of the natural key instead of a sequence: a reload gives
-- every row the same key in any order, batches (months) could load in parallel, and a
-- rebuilt partition would carry the keys already referenced. Dimension members get
-- dw.member_key(code) (key 0 stays the unknown member), flights get dw.flight_key(<natural
-- key of the contract>); the dimension keys widen to bigint, since a 64-bit hash is what
-- makes a collision a bug rather than bad luck. The natural keys keep their UNIQUE
-- constraints and the keys their primary keys, so a collision fails the load loudly.
-- Existing warehouses are converted in place: every key, and every foreign key referencing
-- one (facts -> dimensions, ml.predictions -> fact_flight), is rewritten; no row is lost.
-- depends: 0022_current_state_fingerprints

-- Inlined by the planner (plain SQL, immutable parts only), so they cost one hash per row.
CREATE FUNCTION dw.member_key(code text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(code, 0) $$;
COMMENT ON FUNCTION dw.member_key(text) IS 'Surrogate key of a dimension member: 64-bit hash of its natural key (carrier, FAA code, tail number).';

-- The arguments are the flights entity's natural key in the data contract, and the text
-- hashed is the flight event's Kafka key (flightpipe.contract.events.flight_key).
CREATE FUNCTION dw.flight_key(year smallint, month smallint, day smallint, carrier text,
                              flight_number smallint, origin text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT hashtextextended(year::text || '-' || month::text || '-' || day::text || '|'
                            || carrier || '|' || flight_number::text || '|' || origin, 0)
$$;
COMMENT ON FUNCTION dw.flight_key(smallint, smallint, smallint, text, smallint, text) IS 'Surrogate key of a flight: 64-bit hash of its natural key, spelled as the flight event''s Kafka key (year-month-day|carrier|flight|origin).';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM admin.bulk_rebuild) THEN
        RAISE EXCEPTION 'a bulk load left constraints to restore (admin.bulk_rebuild); '
                        'finish or roll it back before migrating';
    END IF;
END
$$;

-- Views over the re-typed columns go first; the current-state ones are re-applied after
-- the migration run (their recorded fingerprints are forgotten below).
DROP VIEW IF EXISTS staging.flights_resolved, staging.weather_resolved;
DROP VIEW IF EXISTS mart.on_time_by_carrier_month, mart.route_delay_rank_month,
    mart.airport_delay_rolling_7d, mart.delay_by_weather, mart.plane_age_effect, mart.kpi;
DROP VIEW dw.dim_origin_airport, dw.dim_dest_airport;
DELETE FROM admin.applied_sql WHERE name IN ('10_staging_views.sql', '20_marts.sql');

ALTER TABLE ml.predictions DROP CONSTRAINT predictions_flight_key_fkey;
ALTER TABLE dw.fact_flight
    DROP CONSTRAINT fact_flight_airline_key_fkey,
    DROP CONSTRAINT fact_flight_origin_airport_key_fkey,
    DROP CONSTRAINT fact_flight_dest_airport_key_fkey,
    DROP CONSTRAINT fact_flight_plane_key_fkey,
    ALTER flight_key DROP IDENTITY,
    ALTER airline_key TYPE bigint,
    ALTER origin_airport_key TYPE bigint,
    ALTER dest_airport_key TYPE bigint,
    ALTER plane_key TYPE bigint;
ALTER TABLE dw.fact_weather_hourly
    DROP CONSTRAINT fact_weather_hourly_airport_key_fkey,
    ALTER airport_key TYPE bigint;
ALTER TABLE dw.dim_airline ALTER airline_key DROP IDENTITY, ALTER airline_key TYPE bigint;
ALTER TABLE dw.dim_airport ALTER airport_key DROP IDENTITY, ALTER airport_key TYPE bigint;
ALTER TABLE dw.dim_plane ALTER plane_key DROP IDENTITY, ALTER plane_key TYPE bigint;

-- New keys from the natural keys, referencing rows first (they find the old keys in the
-- dimensions), the dimensions last. Old keys are small sequence numbers, new ones 64-bit
-- hashes: no new key can meet an old one while the rows are being rewritten.
UPDATE ml.predictions AS s
SET flight_key = dw.flight_key((f.date_key / 10000)::smallint, (f.date_key / 100 % 100)::smallint,
                               (f.date_key % 100)::smallint, a.carrier_code, f.flight_number,
                               o.faa_code)
FROM dw.fact_flight AS f
JOIN dw.dim_airline AS a ON a.airline_key = f.airline_key
JOIN dw.dim_airport AS o ON o.airport_key = f.origin_airport_key
WHERE s.flight_key = f.flight_key;

UPDATE dw.fact_flight AS f
SET flight_key = dw.flight_key((f.date_key / 10000)::smallint, (f.date_key / 100 % 100)::smallint,
                               (f.date_key % 100)::smallint, a.carrier_code, f.flight_number,
                               o.faa_code),
    airline_key = CASE WHEN a.airline_key = 0 THEN 0 ELSE dw.member_key(a.carrier_code) END,
    origin_airport_key = CASE WHEN o.airport_key = 0 THEN 0 ELSE dw.member_key(o.faa_code) END,
    dest_airport_key = CASE WHEN d.airport_key = 0 THEN 0 ELSE dw.member_key(d.faa_code) END,
    plane_key = CASE WHEN p.plane_key = 0 THEN 0 ELSE dw.member_key(p.tailnum) END
FROM dw.dim_airline AS a, dw.dim_airport AS o, dw.dim_airport AS d, dw.dim_plane AS p
WHERE a.airline_key = f.airline_key AND o.airport_key = f.origin_airport_key
  AND d.airport_key = f.dest_airport_key AND p.plane_key = f.plane_key;

UPDATE dw.fact_weather_hourly AS w
SET airport_key = dw.member_key(o.faa_code)
FROM dw.dim_airport AS o
WHERE o.airport_key = w.airport_key AND o.airport_key <> 0;

UPDATE dw.dim_airline SET airline_key = dw.member_key(carrier_code) WHERE airline_key <> 0;
UPDATE dw.dim_airport SET airport_key = dw.member_key(faa_code) WHERE airport_key <> 0;
UPDATE dw.dim_plane SET plane_key = dw.member_key(tailnum) WHERE plane_key <> 0;

-- The rule, kept by the catalog for the dimensions (small tables, cheap to check).
ALTER TABLE dw.dim_airline ADD CONSTRAINT dim_airline_key_of_code
    CHECK (airline_key = 0 OR airline_key = dw.member_key(carrier_code));
ALTER TABLE dw.dim_airport ADD CONSTRAINT dim_airport_key_of_code
    CHECK (airport_key = 0 OR airport_key = dw.member_key(faa_code));
ALTER TABLE dw.dim_plane ADD CONSTRAINT dim_plane_key_of_code
    CHECK (plane_key = 0 OR plane_key = dw.member_key(tailnum));

ALTER TABLE dw.fact_flight
    ADD CONSTRAINT fact_flight_airline_key_fkey
        FOREIGN KEY (airline_key) REFERENCES dw.dim_airline (airline_key),
    ADD CONSTRAINT fact_flight_origin_airport_key_fkey
        FOREIGN KEY (origin_airport_key) REFERENCES dw.dim_airport (airport_key),
    ADD CONSTRAINT fact_flight_dest_airport_key_fkey
        FOREIGN KEY (dest_airport_key) REFERENCES dw.dim_airport (airport_key),
    ADD CONSTRAINT fact_flight_plane_key_fkey
        FOREIGN KEY (plane_key) REFERENCES dw.dim_plane (plane_key);
ALTER TABLE dw.fact_weather_hourly ADD CONSTRAINT fact_weather_hourly_airport_key_fkey
    FOREIGN KEY (airport_key) REFERENCES dw.dim_airport (airport_key);
ALTER TABLE ml.predictions ADD CONSTRAINT predictions_flight_key_fkey
    FOREIGN KEY (flight_key) REFERENCES dw.fact_flight (flight_key) ON DELETE CASCADE;

CREATE VIEW dw.dim_origin_airport AS
SELECT airport_key AS origin_airport_key, faa_code AS origin_code, name AS origin_name,
       latitude AS origin_latitude, longitude AS origin_longitude, tzone AS origin_tzone,
       is_inferred AS origin_is_inferred
FROM dw.dim_airport;
COMMENT ON VIEW dw.dim_origin_airport IS 'dim_airport in the origin role (join on fact_flight.origin_airport_key).';

CREATE VIEW dw.dim_dest_airport AS
SELECT airport_key AS dest_airport_key, faa_code AS dest_code, name AS dest_name,
       latitude AS dest_latitude, longitude AS dest_longitude, tzone AS dest_tzone,
       is_inferred AS dest_is_inferred
FROM dw.dim_airport;
COMMENT ON VIEW dw.dim_dest_airport IS 'dim_airport in the destination role (join on fact_flight.dest_airport_key).';

COMMENT ON COLUMN dw.dim_airline.airline_key IS 'Surrogate key: dw.member_key(carrier_code); 0 = unknown.';
COMMENT ON COLUMN dw.dim_airport.airport_key IS 'Surrogate key: dw.member_key(faa_code); 0 = unknown.';
COMMENT ON COLUMN dw.dim_plane.plane_key IS 'Surrogate key: dw.member_key(tailnum); 0 = no tail number.';
COMMENT ON COLUMN dw.fact_flight.flight_key IS 'Surrogate key: dw.flight_key(natural key), the same on every reload (referenced by ml.predictions).';

ANALYZE dw.dim_airline, dw.dim_airport, dw.dim_plane, dw.fact_flight, dw.fact_weather_hourly;
