-- Schemas of the warehouse: one per layer, so grants and lifecycles stay separate.

CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS dw;
CREATE SCHEMA IF NOT EXISTS mart;
CREATE SCHEMA IF NOT EXISTS ml;
CREATE SCHEMA IF NOT EXISTS meta;

COMMENT ON SCHEMA staging IS 'Unlogged landing tables for COPY; truncated by every load, never read by reports.';
COMMENT ON SCHEMA dw IS 'Star schema: conformed dimensions and facts at their declared grain.';
COMMENT ON SCHEMA mart IS 'Read-only analytical views over dw (joins and window functions).';
COMMENT ON SCHEMA ml IS 'Model registry and predictions written by the ML pipeline.';
COMMENT ON SCHEMA meta IS 'Pipeline bookkeeping: load batches, landed files, data checks, replay cursor, task timings.';
