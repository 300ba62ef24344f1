-- From here on the staging tables are built from the data contract
-- (flightpipe.warehouse.staging, after every migration run), so their shape is declared
-- once; the resolved views over them live in sql/current/10_staging_views.sql.
-- A load batch whose loader died is closed as 'abandoned' by the next load.
-- depends: 0008_staging_naive_utc

DROP VIEW IF EXISTS staging.flights_resolved;
DROP VIEW IF EXISTS staging.weather_resolved;
DROP TABLE IF EXISTS staging.flights, staging.weather, staging.airlines, staging.airports, staging.planes;

ALTER TABLE meta.load_batches DROP CONSTRAINT load_batches_status_check;
ALTER TABLE meta.load_batches ADD CONSTRAINT load_batches_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned'));
COMMENT ON COLUMN meta.load_batches.status IS 'running, succeeded, failed (its changes rolled back), or abandoned (its loader died; closed by the next load).';
