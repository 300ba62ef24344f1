-- Privileges by duty. Current state, not history: applied after every migration run whenever
-- this file or the set of duty roles changes (flightpipe.warehouse.current), so a warehouse
-- migrated before its roles existed gets them on the next run. The owner of the schemas (the
-- migrator) keeps all DDL. flightpipe_loader writes staging, dw and meta; flightpipe_ml reads
-- dw and writes ml; flightpipe_reader reads mart, dw, meta and ml. Default privileges cover
-- the tables created later. PUBLIC may not connect, nor create temporary tables or objects in
-- schema public. The roles are created by `flightpipe up` (on an external server, by its
-- administrator); a role that does not exist is skipped, and its duty then runs as the user
-- of the one warehouse URL.
DO $grants$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flightpipe_loader') THEN
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO flightpipe_loader',
                       current_database());
        GRANT USAGE ON SCHEMA staging, dw, meta TO flightpipe_loader;
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA staging
            TO flightpipe_loader;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA dw, meta
            TO flightpipe_loader;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA staging, dw, meta TO flightpipe_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA staging
            GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO flightpipe_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA dw, meta
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flightpipe_loader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA staging, dw, meta
            GRANT USAGE, SELECT ON SEQUENCES TO flightpipe_loader;
        GRANT EXECUTE ON FUNCTION dw.bulk_drop_indexes(text), dw.bulk_restore_indexes(text),
            dw.bulk_fresh_storage(text) TO flightpipe_loader;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flightpipe_ml') THEN
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO flightpipe_ml',
                       current_database());
        GRANT USAGE ON SCHEMA dw, ml TO flightpipe_ml;
        GRANT SELECT ON ALL TABLES IN SCHEMA dw TO flightpipe_ml;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ml TO flightpipe_ml;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ml TO flightpipe_ml;
        ALTER DEFAULT PRIVILEGES IN SCHEMA dw GRANT SELECT ON TABLES TO flightpipe_ml;
        ALTER DEFAULT PRIVILEGES IN SCHEMA ml
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flightpipe_ml;
        ALTER DEFAULT PRIVILEGES IN SCHEMA ml GRANT USAGE, SELECT ON SEQUENCES TO flightpipe_ml;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flightpipe_reader') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO flightpipe_reader', current_database());
        GRANT USAGE ON SCHEMA mart, dw, meta, ml TO flightpipe_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA mart, dw, meta, ml TO flightpipe_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA mart, dw, meta, ml
            GRANT SELECT ON TABLES TO flightpipe_reader;
    END IF;
END
$grants$;
