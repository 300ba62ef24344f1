-- Staging's UTC instants became timestamp WITHOUT time zone here (values are UTC by
-- contract; psycopg's binary COPY of naive datetimes is about 3x faster). The staging tables
-- and views are built elsewhere now (see 0006); kept, empty, for the history.
-- depends: 0006_staging

DO $$ BEGIN END $$;  -- nothing left to do
