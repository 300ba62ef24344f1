"""Score flights with the serving model into ``ml.predictions``.

Which model serves is decided in :mod:`flightpipe.ml.registry`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import psycopg
import pyarrow as pa
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from flightpipe.ml.features import feature_matrix, scoring_frame
from flightpipe.ml.registry import ServingModel, serving_model
from flightpipe.ml.train import MODEL_THREADS, load_artifact, read_artifact
from flightpipe.settings import Settings
from flightpipe.storage import storage_options
from flightpipe.warehouse import binary_copy
from flightpipe.warehouse.db import connect

log = logging.getLogger(__name__)

_STAGE: Final = """
CREATE TEMP TABLE prediction_stage (
    flight_key bigint NOT NULL,
    probability double precision NOT NULL,
    predicted_label smallint NOT NULL
) ON COMMIT DROP
"""
# Binary, from arrays: formatting a year of scores as CSV text row by row in Python took
# longer than the COPY itself.
_COPY_STAGE: Final = (
    "COPY prediction_stage (flight_key, probability, predicted_label)"
    " FROM STDIN WITH (FORMAT binary)"
)
_STAGE_TYPES: Final = ("bigint", "double precision", "smallint")
# The flight may have been deleted since it was read; the join keeps the FK satisfied.
_INSERT: Final = """
INSERT INTO ml.predictions (flight_key, model_run_id, probability, predicted_label)
SELECT s.flight_key, %(model_run_id)s, s.probability, s.predicted_label
FROM prediction_stage AS s
JOIN dw.fact_flight AS f ON f.flight_key = s.flight_key
ON CONFLICT ON CONSTRAINT predictions_flight_model_unique DO NOTHING
"""


# Trainings ranked newest first by their newest run; a run registered without a training
# id counts as a training of its own.
_PRUNE: Final = """
DELETE FROM ml.predictions AS p
USING ml.model_runs AS r
WHERE p.model_run_id = r.model_run_id
  AND coalesce(r.params ->> 'training_id', r.model_run_id::text) NOT IN (
      SELECT coalesce(params ->> 'training_id', model_run_id::text)
      FROM ml.model_runs
      GROUP BY 1
      ORDER BY max(model_run_id) DESC
      LIMIT %(keep)s)
"""


class NoModelError(LookupError):
    """No model is registered in ``ml.model_runs`` yet, or its artifact is unusable."""


def load_model(model: ServingModel, storage_options: Mapping[str, Any] | None = None) -> Pipeline:
    """Load the artifact after checking it is the very file that was registered, as skops
    with only trusted types: a row in ``ml.model_runs`` names a file, never code to run.

    The bytes are read once: the checksum covers exactly what is loaded."""
    try:
        data = read_artifact(model.artifact_path, storage_options)
    except FileNotFoundError:
        raise NoModelError(f"model artifact {model.artifact_path} is missing") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.artifact_sha256:
        raise NoModelError(
            f"model artifact {model.artifact_path} has SHA-256 {digest}, "
            f"registered {model.artifact_sha256}"
        )
    try:
        pipeline: Pipeline = load_artifact(data)
    except ValueError as exc:
        raise NoModelError(f"{model.artifact_path}: {exc}") from exc
    return pipeline


def predict(settings: Settings) -> int:
    """Score every flight the serving model has not scored yet; return how many were added.

    Safe to run twice or concurrently: rows go through a staging table and
    ``ON CONFLICT DO NOTHING`` on (flight_key, model_run_id). Raises :class:`NoModelError`
    when no usable model is registered.
    """
    started = time.perf_counter()
    with connect(settings, "ml") as conn:
        model = serving_model(conn)
        if model is None:
            raise NoModelError("no model registered in ml.model_runs: run `flightpipe train`")
        pipeline = load_model(model, storage_options(settings))
        pruned = prune_predictions(conn, settings.ml_keep_trainings)
        frame = scoring_frame(conn, model.model_run_id)
        if frame.empty:
            log.info("model run %s: nothing new to score", model.model_run_id)
            return 0
        with threadpool_limits(limits=MODEL_THREADS):
            proba = pipeline.predict_proba(feature_matrix(frame))[:, 1]
        scores = pa.table(
            {
                "flight_key": frame["flight_key"].to_numpy(),
                "probability": proba,
                "predicted_label": (proba >= model.threshold).astype(np.int16),
            }
        )
        with conn.transaction():
            conn.execute(_STAGE)
            with conn.cursor() as cur:
                with cur.copy(_COPY_STAGE) as copy:
                    for chunk in binary_copy.encode(scores, _STAGE_TYPES):
                        copy.write(chunk)
                cur.execute(_INSERT, {"model_run_id": model.model_run_id})
                added = cur.rowcount
    log.info(
        "model run %s scored %d flights (%d new) in %.1f s; %d scores of older trainings deleted",
        model.model_run_id,
        len(frame),
        added,
        time.perf_counter() - started,
        pruned,
    )
    return added


def prune_predictions(conn: psycopg.Connection[Any], keep: int) -> int:
    """Delete the scores of every training but the ``keep`` newest (the serving model's is
    the newest); return how many rows went. Each training scores every flight, so without
    this ``ml.predictions`` grows by the whole warehouse at every training and the
    insert of the next scores slows with it. The runs stay registered with their metrics."""
    with conn.transaction():
        deleted = conn.execute(_PRUNE, {"keep": keep}).rowcount
    return max(deleted, 0)
