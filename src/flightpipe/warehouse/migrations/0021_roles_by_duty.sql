-- Privileges by duty were first granted here. They are current-state SQL now
-- (sql/current/30_grants.sql), applied after every migration run whenever the file or the set
-- of duty roles changes, so a role created after this migration still gets its privileges.
-- Kept, empty, for the history.
-- depends: 0020_bulk_index_functions

DO $$ BEGIN END $$;  -- nothing left to do
