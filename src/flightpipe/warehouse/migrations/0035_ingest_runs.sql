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
