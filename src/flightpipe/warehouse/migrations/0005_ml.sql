-- Tables the ML pipeline writes: a model registry and the scores it produces.
-- depends: 0004_facts

CREATE TABLE ml.model_runs (
    model_run_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    algorithm       text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_from       date NOT NULL,
    data_to         date NOT NULL,
    metrics         jsonb NOT NULL DEFAULT '{}'::jsonb,
    artifact_path   text NOT NULL,
    artifact_sha256 char(64) NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (data_to >= data_from)
);
CREATE INDEX model_runs_created_idx ON ml.model_runs (created_at);
COMMENT ON TABLE ml.model_runs IS 'One row per trained model: algorithm, parameters, training data window, evaluation metrics, artifact and its checksum.';
COMMENT ON COLUMN ml.model_runs.model_run_id IS 'Surrogate key.';
COMMENT ON COLUMN ml.model_runs.algorithm IS 'Estimator name, e.g. sklearn.ensemble.HistGradientBoostingClassifier.';
COMMENT ON COLUMN ml.model_runs.params IS 'Hyper-parameters and feature list.';
COMMENT ON COLUMN ml.model_runs.data_from IS 'First local flight date of the training data.';
COMMENT ON COLUMN ml.model_runs.data_to IS 'Last local flight date of the training data.';
COMMENT ON COLUMN ml.model_runs.metrics IS 'Evaluation metrics, e.g. {"roc_auc": 0.71}.';
COMMENT ON COLUMN ml.model_runs.artifact_path IS 'Where the serialized model is stored.';
COMMENT ON COLUMN ml.model_runs.artifact_sha256 IS 'SHA-256 of the artifact, hex.';
COMMENT ON COLUMN ml.model_runs.created_at IS 'When the run was registered.';

CREATE TABLE ml.predictions (
    prediction_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flight_key      bigint NOT NULL REFERENCES dw.fact_flight (flight_key) ON DELETE CASCADE,
    model_run_id    bigint NOT NULL REFERENCES ml.model_runs (model_run_id) ON DELETE CASCADE,
    probability     double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
    predicted_label smallint NOT NULL,
    scored_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT predictions_flight_model_unique UNIQUE (flight_key, model_run_id)
);
CREATE INDEX predictions_model_run_idx ON ml.predictions (model_run_id);
COMMENT ON TABLE ml.predictions IS 'Model scores per flight and model run (upsert on flight_key, model_run_id).';
COMMENT ON COLUMN ml.predictions.prediction_id IS 'Surrogate key.';
COMMENT ON COLUMN ml.predictions.flight_key IS 'Scored flight -> dw.fact_flight.';
COMMENT ON COLUMN ml.predictions.model_run_id IS 'Model that scored it -> ml.model_runs.';
COMMENT ON COLUMN ml.predictions.probability IS 'Predicted probability of the positive class (e.g. arrival delayed > 15 min).';
COMMENT ON COLUMN ml.predictions.predicted_label IS 'Predicted class (1 = positive).';
COMMENT ON COLUMN ml.predictions.scored_at IS 'When the flight was scored.';
