-- Pipeline bookkeeping. Created before dw because facts reference their load batch.
-- depends: 0001_schemas

CREATE TABLE meta.load_batches (
    batch_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'failed')),
    forced          boolean NOT NULL DEFAULT false,
    files           integer NOT NULL DEFAULT 0 CHECK (files >= 0),
    rows_in         bigint NOT NULL DEFAULT 0 CHECK (rows_in >= 0),
    rows_duplicate  bigint NOT NULL DEFAULT 0 CHECK (rows_duplicate >= 0),
    rows_loaded     bigint NOT NULL DEFAULT 0 CHECK (rows_loaded >= 0),
    rows_rejected   bigint NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_inserted   bigint NOT NULL DEFAULT 0 CHECK (rows_inserted >= 0),
    rows_updated    bigint NOT NULL DEFAULT 0 CHECK (rows_updated >= 0),
    counts          jsonb NOT NULL DEFAULT '{}'::jsonb,
    offsets         jsonb NOT NULL DEFAULT '{}'::jsonb,
    timings         jsonb NOT NULL DEFAULT '{}'::jsonb,
    error           text,
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
COMMENT ON TABLE meta.load_batches IS 'Audit row per load run: counts (landed = duplicate + loaded + rejected), offsets per topic/partition, step timings.';
COMMENT ON COLUMN meta.load_batches.batch_id IS 'Load batch id; referenced by facts and dimensions as lineage.';
COMMENT ON COLUMN meta.load_batches.started_at IS 'When the load run started.';
COMMENT ON COLUMN meta.load_batches.finished_at IS 'When the load run committed or failed.';
COMMENT ON COLUMN meta.load_batches.status IS 'running, succeeded, or failed (its changes rolled back).';
COMMENT ON COLUMN meta.load_batches.forced IS 'True when files already loaded were reloaded on request.';
COMMENT ON COLUMN meta.load_batches.files IS 'Landing files read by this batch.';
COMMENT ON COLUMN meta.load_batches.rows_in IS 'Rows read from the landing files, all topics, before dedupe.';
COMMENT ON COLUMN meta.load_batches.rows_duplicate IS 'Redelivered rows dropped by the natural-key dedupe (latest offset kept).';
COMMENT ON COLUMN meta.load_batches.rows_loaded IS 'Rows staged and upserted into dw (inserted + updated + unchanged).';
COMMENT ON COLUMN meta.load_batches.rows_rejected IS 'Rows that failed validation; kept in meta.rejected_rows.';
COMMENT ON COLUMN meta.load_batches.rows_inserted IS 'New rows written to dw tables.';
COMMENT ON COLUMN meta.load_batches.rows_updated IS 'Existing dw rows whose values changed.';
COMMENT ON COLUMN meta.load_batches.counts IS 'Per-topic counts: landed, duplicate, loaded, rejected, inserted, updated.';
COMMENT ON COLUMN meta.load_batches.offsets IS 'Per topic and partition: first and last offset read, file count.';
COMMENT ON COLUMN meta.load_batches.timings IS 'Seconds per step: discover, transform, copy, upsert, checks, total.';
COMMENT ON COLUMN meta.load_batches.error IS 'Error message of a failed batch.';

CREATE TABLE meta.landing_files (
    path            text PRIMARY KEY,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL CHECK (kafka_partition >= 0),
    first_offset    bigint NOT NULL CHECK (first_offset >= 0),
    last_offset     bigint NOT NULL,
    rows            integer NOT NULL CHECK (rows >= 0),
    bytes           bigint NOT NULL CHECK (bytes >= 0),
    batch_id        bigint NOT NULL REFERENCES meta.load_batches (batch_id),
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (last_offset >= first_offset)
);
CREATE INDEX landing_files_batch_idx ON meta.landing_files (batch_id);
CREATE INDEX landing_files_topic_partition_idx ON meta.landing_files (topic, kafka_partition, last_offset);
COMMENT ON TABLE meta.landing_files IS 'Landing files already loaded; a file listed here is skipped unless a forced reload is asked for.';
COMMENT ON COLUMN meta.landing_files.path IS 'Path relative to the landing directory: <topic>/partition=<p>/<first>-<last>.parquet.';
COMMENT ON COLUMN meta.landing_files.topic IS 'Kafka topic the file was consumed from.';
COMMENT ON COLUMN meta.landing_files.kafka_partition IS 'Kafka partition the file was consumed from.';
COMMENT ON COLUMN meta.landing_files.first_offset IS 'First Kafka offset in the file.';
COMMENT ON COLUMN meta.landing_files.last_offset IS 'Last Kafka offset in the file.';
COMMENT ON COLUMN meta.landing_files.rows IS 'Rows in the file.';
COMMENT ON COLUMN meta.landing_files.bytes IS 'File size in bytes.';
COMMENT ON COLUMN meta.landing_files.batch_id IS 'Batch that first loaded the file.';
COMMENT ON COLUMN meta.landing_files.loaded_at IS 'When the file was first loaded.';

CREATE TABLE meta.rejected_rows (
    rejected_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        bigint NOT NULL REFERENCES meta.load_batches (batch_id),
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason          text NOT NULL,
    record          jsonb NOT NULL,
    UNIQUE (batch_id, topic, kafka_partition, kafka_offset)
);
COMMENT ON TABLE meta.rejected_rows IS 'Landed rows that failed validation, with the reason; they count as rejected in the batch audit.';
COMMENT ON COLUMN meta.rejected_rows.rejected_id IS 'Surrogate key.';
COMMENT ON COLUMN meta.rejected_rows.batch_id IS 'Batch that rejected the row.';
COMMENT ON COLUMN meta.rejected_rows.topic IS 'Kafka topic of the row.';
COMMENT ON COLUMN meta.rejected_rows.kafka_partition IS 'Kafka partition of the row.';
COMMENT ON COLUMN meta.rejected_rows.kafka_offset IS 'Kafka offset of the row.';
COMMENT ON COLUMN meta.rejected_rows.reason IS 'Why the row was rejected.';
COMMENT ON COLUMN meta.rejected_rows.record IS 'The landed row as JSON.';

CREATE TABLE meta.check_results (
    check_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        bigint REFERENCES meta.load_batches (batch_id),
    check_name      text NOT NULL,
    passed          boolean NOT NULL,
    observed        numeric,
    expected        numeric,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    checked_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX check_results_batch_idx ON meta.check_results (batch_id);
CREATE INDEX check_results_checked_at_idx ON meta.check_results (checked_at);
COMMENT ON TABLE meta.check_results IS 'Outcome of every data check, after each load or on demand.';
COMMENT ON COLUMN meta.check_results.check_id IS 'Surrogate key.';
COMMENT ON COLUMN meta.check_results.batch_id IS 'Load batch checked; NULL for an on-demand check of the whole warehouse.';
COMMENT ON COLUMN meta.check_results.check_name IS 'Stable check name, e.g. orphan_fk.fact_flight.plane_key.';
COMMENT ON COLUMN meta.check_results.passed IS 'True when observed matched expected.';
COMMENT ON COLUMN meta.check_results.observed IS 'Measured value (usually a row count).';
COMMENT ON COLUMN meta.check_results.expected IS 'Value the check required.';
COMMENT ON COLUMN meta.check_results.details IS 'Extra context, e.g. sample offending keys.';
COMMENT ON COLUMN meta.check_results.checked_at IS 'When the check ran.';

CREATE TABLE meta.replay_cursor (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_day        date NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO meta.replay_cursor (id, next_day) VALUES (true, DATE '2013-01-01');
COMMENT ON TABLE meta.replay_cursor IS 'Single row: the next day of 2013 the ingest DAG replays.';
COMMENT ON COLUMN meta.replay_cursor.id IS 'Always true; makes the table single-row.';
COMMENT ON COLUMN meta.replay_cursor.next_day IS 'Next local date to replay.';
COMMENT ON COLUMN meta.replay_cursor.updated_at IS 'When the cursor last moved.';

CREATE TABLE meta.task_runs (
    task_run_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id          text NOT NULL,
    run_id          text NOT NULL,
    task_id         text NOT NULL,
    map_index       integer NOT NULL DEFAULT -1,
    try_number      integer NOT NULL DEFAULT 1 CHECK (try_number >= 0),
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    duration_s      double precision GENERATED ALWAYS AS
                    (extract(epoch FROM (ended_at - started_at))) STORED,
    state           text NOT NULL,
    UNIQUE (dag_id, run_id, task_id, map_index, try_number),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX task_runs_started_idx ON meta.task_runs (dag_id, started_at);
COMMENT ON TABLE meta.task_runs IS 'Airflow task timings, one row per task try, for pipeline timing charts.';
COMMENT ON COLUMN meta.task_runs.task_run_id IS 'Surrogate key.';
COMMENT ON COLUMN meta.task_runs.dag_id IS 'Airflow DAG id.';
COMMENT ON COLUMN meta.task_runs.run_id IS 'Airflow DAG run id.';
COMMENT ON COLUMN meta.task_runs.task_id IS 'Airflow task id.';
COMMENT ON COLUMN meta.task_runs.map_index IS 'Index of a mapped task instance; -1 when not mapped.';
COMMENT ON COLUMN meta.task_runs.try_number IS 'Airflow try number.';
COMMENT ON COLUMN meta.task_runs.started_at IS 'Task start.';
COMMENT ON COLUMN meta.task_runs.ended_at IS 'Task end.';
COMMENT ON COLUMN meta.task_runs.duration_s IS 'ended_at - started_at in seconds (computed).';
COMMENT ON COLUMN meta.task_runs.state IS 'Final task state (success, failed, ...).';
