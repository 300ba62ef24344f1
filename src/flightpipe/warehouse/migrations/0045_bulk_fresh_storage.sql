-- Bulk loads write less.
-- * A bulk load into an empty fact table starts it on a new, empty file (TRUNCATE). On a
--   server with wal_level = minimal (the local stack's), rows written to a file created in
--   the same transaction skip the write-ahead log and the file is synced once at commit:
--   the first load of a year writes its facts and their indexes about twice as fast. On any
--   other server it changes nothing.
-- * The restore analyzes the columns the planner joins and filters on (keys, indexed and
--   referencing columns), not every measure: a third of the time, the same plans.
-- As for the other bulk functions, the DDL runs as the owner.
-- depends: 0040_live_replay

CREATE FUNCTION dw.bulk_fresh_storage(fact text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target regclass;
    tables text[];
    found boolean;
    t text;
BEGIN
    IF fact NOT IN ('fact_flight', 'fact_weather_hourly') THEN
        RAISE EXCEPTION 'bulk mode is for the fact tables only, not %', fact;
    END IF;
    target := format('dw.%I', fact)::regclass;
    -- The tables that reference it (ml.predictions) go with it: TRUNCATE refuses otherwise.
    tables := array(SELECT DISTINCT c.conrelid::regclass::text FROM pg_constraint AS c
                    WHERE c.confrelid = target AND c.contype = 'f' AND c.conrelid <> target);
    tables := array_prepend(target::text, tables);
    -- Only when every one of them is empty: nothing is ever removed here.
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO found;
        IF found THEN
            RETURN false;
        END IF;
    END LOOP;
    EXECUTE format('TRUNCATE %s', array_to_string(tables, ', '));
    RETURN true;
END
$$;
COMMENT ON FUNCTION dw.bulk_fresh_storage(text) IS 'Bulk load: when a dw fact table and every table that references it are empty, TRUNCATE them so the load writes to new files (no WAL under wal_level = minimal); returns whether it did.';

REVOKE ALL ON FUNCTION dw.bulk_fresh_storage(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION dw.bulk_restore_indexes(fact text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target regclass;
    item record;
    keys text;
    n integer := 0;
BEGIN
    IF fact NOT IN ('fact_flight', 'fact_weather_hourly') THEN
        RAISE EXCEPTION 'bulk mode is for the fact tables only, not %', fact;
    END IF;
    target := format('dw.%I', fact)::regclass;
    FOR item IN SELECT b.ddl FROM admin.bulk_rebuild AS b WHERE b.table_name = fact
                ORDER BY b.position LOOP
        EXECUTE item.ddl;
        n := n + 1;
    END LOOP;
    DELETE FROM admin.bulk_rebuild AS b WHERE b.table_name = fact;
    -- Fresh statistics for the checks' and marts' plans after a big change, on the columns
    -- of the table's indexes and constraints.
    SELECT string_agg(DISTINCT quote_ident(a.attname), ', ') INTO keys
    FROM pg_attribute AS a
    WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
      AND (EXISTS (SELECT 1 FROM pg_index AS i
                   WHERE i.indrelid = target AND a.attnum = ANY (i.indkey))
           OR EXISTS (SELECT 1 FROM pg_constraint AS c
                      WHERE c.conrelid = target AND a.attnum = ANY (c.conkey)
                        AND c.contype IN ('f', 'u', 'p')));
    EXECUTE format('ANALYZE %s (%s)', target, keys);
    RETURN n;
END
$$;
COMMENT ON FUNCTION dw.bulk_restore_indexes(text) IS 'Bulk load: re-create what dw.bulk_drop_indexes dropped for a fact table, then ANALYZE its key columns; returns how many.';
