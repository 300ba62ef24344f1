-- Staging once lived here. Its tables are now built from the data contract after every
-- migration run (flightpipe.warehouse.staging) and its views are current-state SQL
-- (sql/current/10_staging_views.sql); warehouses migrated before keep what this file made
-- and 0009 removes it. Kept, empty, so the migration history stays the same everywhere.
-- depends: 0002_meta 0004_facts

DO $$ BEGIN END $$;  -- nothing left to do
