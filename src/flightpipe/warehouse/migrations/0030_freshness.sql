-- Freshness: how long an event took from its producer to a committed load, where the marts
-- see it. Wall clock on both ends (the replay's own clock is 2013): the Kafka record's
-- timestamp, set by the producer when it sent the event and landed with the row, against the
-- wall time at the end of the load transaction. One row per load batch and topic.
-- depends: 0022_current_state_fingerprints

CREATE TABLE meta.freshness (
    batch_id        bigint NOT NULL REFERENCES meta.load_batches (batch_id),
    topic           text NOT NULL,
    rows            bigint NOT NULL CHECK (rows > 0),
    produced_first  timestamptz NOT NULL,
    produced_last   timestamptz NOT NULL,
    committed_at    timestamptz NOT NULL,
    p50_s           double precision NOT NULL,
    p95_s           double precision NOT NULL,
    max_s           double precision NOT NULL,
    PRIMARY KEY (batch_id, topic),
    CHECK (produced_last >= produced_first),
    CHECK (p50_s <= p95_s AND p95_s <= max_s)
);
CREATE INDEX freshness_committed_idx ON meta.freshness (committed_at);
COMMENT ON TABLE meta.freshness IS 'Per load batch and topic: seconds from each landed event''s production (Kafka record timestamp, wall clock) to the commit of the load that made it queryable in mart; percentiles over the batch''s rows.';
COMMENT ON COLUMN meta.freshness.batch_id IS 'Load batch -> meta.load_batches.';
COMMENT ON COLUMN meta.freshness.topic IS 'Logical topic of the rows (flights, weather, ...).';
COMMENT ON COLUMN meta.freshness.rows IS 'Landed rows of the batch that carry a production time.';
COMMENT ON COLUMN meta.freshness.produced_first IS 'Earliest production time (wall clock) among the rows.';
COMMENT ON COLUMN meta.freshness.produced_last IS 'Latest production time (wall clock) among the rows.';
COMMENT ON COLUMN meta.freshness.committed_at IS 'Wall time at the end of the load transaction, just before COMMIT.';
COMMENT ON COLUMN meta.freshness.p50_s IS 'Median of committed_at - production time, seconds.';
COMMENT ON COLUMN meta.freshness.p95_s IS '95th percentile of committed_at - production time, seconds.';
COMMENT ON COLUMN meta.freshness.max_s IS 'Largest committed_at - production time, seconds (the oldest row).';
