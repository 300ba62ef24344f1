"""Which registered model serves: a read of ``ml.model_runs``, without scikit-learn.

The serving model is the best by held-out ROC AUC among the models of the newest training
(the rows of ``ml.model_runs`` sharing the newest ``training_id``). ROC AUCs of different
trainings were measured on different test windows, so they are not compared with each
other: a newer training always replaces an older one.

Kept apart from :mod:`flightpipe.ml.predict` so that the report, which only shows the
serving model's metrics, does not pay for importing the model libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import psycopg

SERVING_MODEL_SQL: Final = """
SELECT model_run_id, algorithm, artifact_path, artifact_sha256, metrics
FROM ml.model_runs
WHERE params ->> 'training_id' = (
    SELECT params ->> 'training_id' FROM ml.model_runs ORDER BY model_run_id DESC LIMIT 1
)
ORDER BY (metrics ->> 'roc_auc')::float8 DESC NULLS LAST, model_run_id DESC
LIMIT 1
"""


@dataclass(frozen=True)
class ServingModel:
    model_run_id: int
    algorithm: str
    # A path or a storage URL (s3://...), as the training wrote it.
    artifact_path: str
    artifact_sha256: str
    threshold: float
    metrics: dict[str, Any]


def serving_model(conn: psycopg.Connection) -> ServingModel | None:
    """The model :func:`flightpipe.ml.predict.predict` scores with; None if none is registered."""
    row = conn.execute(SERVING_MODEL_SQL).fetchone()
    if row is None:
        return None
    model_run_id, algorithm, path, digest, metrics = row
    return ServingModel(
        model_run_id=int(model_run_id),
        algorithm=str(algorithm),
        artifact_path=str(path),
        artifact_sha256=str(digest),
        threshold=float(metrics.get("threshold", 0.5)),
        metrics=dict(metrics),
    )
