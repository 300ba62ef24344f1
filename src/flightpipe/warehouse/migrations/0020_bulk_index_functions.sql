-- Bulk mode of the load (many new fact rows) drops a fact table's foreign keys, unique
-- constraints and plain indexes, and re-creates them after the upserts: one index build
-- beats maintaining them row by row. That DDL needs the table's owner, and the loader may not
-- ALTER or DROP anything in dw; these two functions run it as the owner, for the fact tables
-- only, with DDL taken from the catalog and kept where the loader cannot reach it.
-- depends: 0008_staging_naive_utc

-- A schema of the owner's own: no other role has any privilege in it (nor is it part of the
-- documented star), so the DDL replayed as the owner cannot be edited by the loader.
CREATE SCHEMA admin;
REVOKE ALL ON SCHEMA admin FROM PUBLIC;
COMMENT ON SCHEMA admin IS 'Owner-only bookkeeping of the warehouse; no other role may read or write it.';

CREATE TABLE admin.bulk_rebuild (
    table_name      text NOT NULL CHECK (table_name IN ('fact_flight', 'fact_weather_hourly')),
    position        integer NOT NULL,
    ddl             text NOT NULL,
    PRIMARY KEY (table_name, position)
);
COMMENT ON TABLE admin.bulk_rebuild IS 'DDL of the constraints and indexes a bulk load dropped, replayed by dw.bulk_restore_indexes in the same transaction; empty outside a load.';
COMMENT ON COLUMN admin.bulk_rebuild.table_name IS 'Fact table in dw whose constraints and indexes were dropped.';
COMMENT ON COLUMN admin.bulk_rebuild.position IS 'Order of re-creation.';
COMMENT ON COLUMN admin.bulk_rebuild.ddl IS 'Catalog-generated CREATE INDEX or ALTER TABLE ... ADD CONSTRAINT.';

-- search_path: catalog names only, temporary objects last, so a caller cannot shadow them.
CREATE FUNCTION dw.bulk_drop_indexes(fact text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target regclass;
    item record;
    n integer := 0;
BEGIN
    IF fact NOT IN ('fact_flight', 'fact_weather_hourly') THEN
        RAISE EXCEPTION 'bulk mode is for the fact tables only, not %', fact;
    END IF;
    IF EXISTS (SELECT 1 FROM admin.bulk_rebuild AS b WHERE b.table_name = fact) THEN
        RAISE EXCEPTION 'dw.% is already in bulk mode', fact;
    END IF;
    target := format('dw.%I', fact)::regclass;
    -- Not the primary key: ml.predictions references it.
    FOR item IN
        SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                      pg_get_constraintdef(c.oid)) AS create_ddl,
               format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname)
                   AS drop_ddl
        FROM pg_constraint AS c WHERE c.conrelid = target AND c.contype IN ('f', 'u')
        UNION ALL
        SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %s', i.indexrelid::regclass)
        FROM pg_index AS i
        WHERE i.indrelid = target AND NOT i.indisunique AND NOT i.indisprimary
    LOOP
        INSERT INTO admin.bulk_rebuild (table_name, position, ddl)
        VALUES (fact, n, item.create_ddl);
        EXECUTE item.drop_ddl;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION dw.bulk_drop_indexes(text) IS 'Bulk load: drop the foreign keys, unique constraints and plain indexes of a dw fact table, keeping their DDL in admin.bulk_rebuild; returns how many.';

CREATE FUNCTION dw.bulk_restore_indexes(fact text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item record;
    n integer := 0;
BEGIN
    IF fact NOT IN ('fact_flight', 'fact_weather_hourly') THEN
        RAISE EXCEPTION 'bulk mode is for the fact tables only, not %', fact;
    END IF;
    FOR item IN SELECT b.ddl FROM admin.bulk_rebuild AS b WHERE b.table_name = fact
                ORDER BY b.position LOOP
        EXECUTE item.ddl;
        n := n + 1;
    END LOOP;
    DELETE FROM admin.bulk_rebuild AS b WHERE b.table_name = fact;
    -- Fresh statistics for the checks' and marts' plans after a big change.
    EXECUTE format('ANALYZE dw.%I', fact);
    RETURN n;
END
$$;
COMMENT ON FUNCTION dw.bulk_restore_indexes(text) IS 'Bulk load: re-create what dw.bulk_drop_indexes dropped for a fact table, then ANALYZE it; returns how many.';

REVOKE ALL ON FUNCTION dw.bulk_drop_indexes(text), dw.bulk_restore_indexes(text) FROM PUBLIC;
