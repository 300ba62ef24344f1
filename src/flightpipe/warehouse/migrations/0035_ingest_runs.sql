-- Where each batch ingest run stops. Its consumers start together with its producers, before
-- anyone knows the end; once every producer is done, the end offsets are published here and
-- the members poll for them (flightpipe.orchestration.stops).
-- depends: 0022_current_state_fingerprints

CREATE TABLE meta.ingest_runs (
    run_key      text PRIMARY KEY,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    snapshot     jsonb,
    published_at timestamptz,
    CHECK ((snapshot IS NULL) = (published_at IS NULL))
);
COMMENT ON TABLE meta.ingest_runs IS 'One row per batch ingest run: the end offsets (topic -> partition -> offset) its consumers stop at, once published.';
COMMENT ON COLUMN meta.ingest_runs.run_key IS 'Key of the run, made when it is planned (plan_slice); the consumer members poll by it.';
COMMENT ON COLUMN meta.ingest_runs.opened_at IS 'When the run was planned; runs older than a week are forgotten when a new one opens.';
COMMENT ON COLUMN meta.ingest_runs.snapshot IS 'End offsets to stop at, topic -> partition -> offset; NULL until every producer is done.';
COMMENT ON COLUMN meta.ingest_runs.published_at IS 'When the snapshot was published.';
