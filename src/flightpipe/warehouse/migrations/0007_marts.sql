-- The mart views once lived here; they are current-state SQL now
-- (sql/current/20_marts.sql, applied after every migration run when it changes).
-- Kept, empty, so the migration history stays the same everywhere.
-- depends: 0004_facts

DO $$ BEGIN END $$;  -- nothing left to do
