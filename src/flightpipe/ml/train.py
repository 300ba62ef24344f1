"""Train, evaluate and register the arrival-delay models.

One call of :func:`train` is one *training*: the labelled flights are split in time (earlier
data trains, later data tests), a linear baseline and a gradient-boosted model are fitted and
compared with a trivial prior, each model is saved in the skops format (which loads without
running code; see :data:`TRUSTED_TYPES`) under ``settings.models_dir`` and registered as a
row of ``ml.model_runs``. The rows of one training share a ``training_id`` in their params;
prediction uses the best of the newest training by held-out ROC AUC (see
:mod:`flightpipe.ml.predict`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import skops.io as sio
from psycopg.types.json import Jsonb
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException
from threadpoolctl import threadpool_limits

from flightpipe import storage
from flightpipe.ml.features import (
    CATEGORICAL,
    FEATURES,
    LABEL,
    LATE_MINUTES,
    NUMERIC,
    feature_matrix,
    training_frame,
)
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

log = logging.getLogger(__name__)

MAX_TRAIN_ROWS: Final = 150_000
IMPORTANCE_ROWS: Final = 4_000
IMPORTANCE_REPEATS: Final = 3
# OpenMP (the boosted trees) and BLAS threads wait for each other at every barrier: on a
# small host shared with the other pipeline tasks, two threads fitted the whole year 8-10
# times slower than one, so the models run on one thread, whatever the host.
MODEL_THREADS: Final = 1
MIN_ROWS: Final = 50
TEST_SHARE: Final = 0.25

_INSERT_RUN: Final = """
INSERT INTO ml.model_runs
    (algorithm, params, data_from, data_to, metrics, artifact_path, artifact_sha256)
VALUES (%(algorithm)s, %(params)s, %(data_from)s, %(data_to)s, %(metrics)s,
        %(artifact_path)s, %(artifact_sha256)s)
RETURNING model_run_id
"""


class NotEnoughDataError(RuntimeError):
    """The warehouse holds too few labelled flights for a train/test split in time."""


@dataclass(frozen=True)
class Split:
    """A split in time: training rows are strictly before ``test_from``."""

    method: str
    test_from: pd.Timestamp
    train: pd.DataFrame = field(repr=False)
    test: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class ModelRun:
    model_run_id: int
    algorithm: str
    metrics: dict[str, Any]
    artifact_path: str
    artifact_sha256: str


@dataclass(frozen=True)
class TrainResult:
    """What a training did; ``dataclasses.asdict`` of it is JSON-serialisable."""

    training_id: str
    runs: list[ModelRun]
    baseline: dict[str, float]
    serving_model_run_id: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest (e.g. for an orchestrator's task result)."""
        return {
            "training_id": self.training_id,
            "serving_model_run_id": self.serving_model_run_id,
            "seconds": round(self.seconds, 2),
            "baseline": self.baseline,
            "runs": [
                {
                    "model_run_id": r.model_run_id,
                    "algorithm": r.algorithm,
                    "roc_auc": r.metrics["roc_auc"],
                    "pr_auc": r.metrics["pr_auc"],
                    "brier": r.metrics["brier"],
                }
                for r in self.runs
            ],
        }


def time_split(frame: pd.DataFrame, test_share: float = TEST_SHARE) -> Split:
    """Train on the earlier data, test on the later.

    With three months or more, the last quarter of the months (at least one) is the test
    set, so a test month is never seen in training. With fewer months the split falls on
    the day at the 75 % point of the loaded days, and within a few days on the scheduled
    departure time at the 75 % point of the flights.
    """
    stamps = pd.to_datetime(frame["flight_date"])
    months = np.sort(stamps.dt.to_period("M").unique())
    days = np.sort(stamps.unique())
    if len(months) >= 3:
        n_test = max(1, round(len(months) * test_share))
        cut = pd.Timestamp(months[-n_test].start_time)
        is_test = stamps >= cut
        method = f"last {n_test} of {len(months)} months"
    elif len(days) >= 4:
        cut = pd.Timestamp(days[int(len(days) * (1 - test_share))])
        is_test = stamps >= cut
        method = f"by date at the 75% point of {len(days)} days"
    else:
        departures = frame["sched_dep_at"]
        cut = pd.Timestamp(departures.quantile(1 - test_share))
        is_test = departures >= cut
        method = "by scheduled departure at the 75% point of the flights"
    train, test = frame[~is_test], frame[is_test]
    for name, part in (("training", train), ("test", test)):
        if len(part) < MIN_ROWS or part[LABEL].nunique() < 2:
            raise NotEnoughDataError(
                f"{name} set has {len(part)} flights and {part[LABEL].nunique()} classes "
                f"after splitting {len(frame)} labelled flights {method}"
            )
    return Split(method=method, test_from=cut, train=train, test=test)


def cap_rows(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """A deterministic sample: same warehouse content and seed, same rows."""
    if len(frame) <= limit:
        return frame
    return frame.sort_values("flight_key").sample(n=limit, random_state=seed)


def logistic_pipeline(seed: int) -> Pipeline:
    # Hour and weekday act non-linearly on delays, so the linear model gets them one-hot.
    # The string columns are first coded as numbers: counting category frequencies for
    # min_frequency is a per-value Python loop on strings, a vectorised one on numbers.
    # Unknown codes (-1) and missing ones (NaN) reach the one-hot step as before: unknown
    # as infrequent, missing as a category of its own.
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64)
    scaled = [c for c in NUMERIC if c not in ("sched_hour", "weekday")]
    prep = ColumnTransformer(
        [
            ("cat", Pipeline([("codes", codes), ("one_hot", _one_hot())]), list(CATEGORICAL)),
            ("time", _one_hot(), ["sched_hour", "weekday"]),
            (
                "num",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                scaled,
            ),
        ]
    )
    # With ~160 design columns the exact Hessian is cheap: Newton-Cholesky reaches the same
    # optimum of the penalised loss in about 4 steps, where Newton-CG spent most of the fit
    # in conjugate-gradient passes over the 150,000-row sparse matrix (and lbfgs needs over
    # a hundred iterations).
    model = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=300, random_state=seed)
    return Pipeline([("prep", prep), ("model", model)])


def _one_hot() -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20)


def boosting_pipeline(seed: int) -> Pipeline:
    # Unknown categories at prediction time become missing values, which the trees route
    # natively, instead of failing the whole scoring batch.
    encode = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        dtype=np.float64,
    )
    prep = ColumnTransformer(
        [("cat", encode, list(CATEGORICAL)), ("num", "passthrough", list(NUMERIC))],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    # Small and few trees: on the whole year, 50 trees of 15 leaves at a rate of 0.2 score
    # the later test months as well as 200 trees of 31 leaves at 0.1 (ROC AUC 0.688 against
    # 0.682; the extra trees fit the training months, not the later ones), and fitting,
    # scoring and the permutation importance all cost in proportion to the trees.
    model = HistGradientBoostingClassifier(
        categorical_features=list(CATEGORICAL),
        learning_rate=0.2,
        max_iter=50,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=seed,
    )
    return Pipeline([("prep", prep), ("model", model)])


def evaluate(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "brier": float(brier_score_loss(y_true, proba)),
    }


def best_threshold(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Probability cut with the best F1 on the held-out set.

    Late arrivals are a minority, so 0.5 would label almost nothing late. The ranking
    metrics (ROC AUC, PR AUC) and the Brier score do not depend on this choice.
    """
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def feature_importance(
    pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, seed: int
) -> dict[str, float]:
    """Mean drop of ROC AUC when one feature is shuffled, on a fixed-size held-out sample.

    Permutation importance, :data:`IMPORTANCE_REPEATS` shuffles per feature, but every
    shuffled copy is scored in a single ``predict_proba`` call: scored one by one, the
    pipeline's per-call preprocessing cost more than the model itself.
    """
    rng = np.random.default_rng(seed)
    if len(x) > IMPORTANCE_ROWS:
        pick = np.sort(rng.choice(len(x), size=IMPORTANCE_ROWS, replace=False))
        x, y = x.iloc[pick], y[pick]
    x = x.reset_index(drop=True)
    copies = []
    for name in x.columns:
        values = x[name].to_numpy()
        for _ in range(IMPORTANCE_REPEATS):
            copies.append(x.assign(**{name: values[rng.permutation(len(x))]}))
    scored = pipeline.predict_proba(pd.concat([x, *copies], ignore_index=True))[:, 1]
    auc = roc_auc_columns(y, scored.reshape(-1, len(x)).T)
    drops = (auc[0] - auc[1:]).reshape(len(x.columns), IMPORTANCE_REPEATS)
    return {
        name: round(float(value), 6)
        for name, value in zip(x.columns, drops.mean(axis=1), strict=True)
    }


def roc_auc_columns(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each column of ``scores``, as the Mann-Whitney statistic (ties count
    half, as in ``roc_auc_score``): one ranking of all columns instead of a curve each."""
    ranks = pd.DataFrame(scores).rank(axis=0).to_numpy()
    positive = np.asarray(y_true) == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def sha256_of(path: str | Path, storage_options: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of a file or object (``path`` a path or a storage URL)."""
    digest = hashlib.sha256()
    fs, inner = storage.filesystem(str(path), storage_options)
    with fs.open(inner, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Types a model artifact may hold beyond those skops trusts by default (numpy, scikit-learn
# estimators): exactly what the two pipelines of this module contain. Loading refuses any
# other type, so an artifact cannot smuggle in code the way a pickle can.
TRUSTED_TYPES: Final = (
    "functools.partial",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)
ARTIFACT_SUFFIX: Final = ".skops"


def save_artifact(
    model: Any, path: str | Path, storage_options: Mapping[str, Any] | None = None
) -> str:
    """Write atomically, so a reader never loads a half-written model; return its SHA-256.

    ``path`` is a path or a storage URL: a temp file and a rename locally, one PUT of the
    whole artifact on an object store."""
    buffer = io.BytesIO()
    sio.dump(model, buffer, compression=zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    fs, inner = storage.filesystem(str(path), storage_options)
    storage.publish_bytes(fs, inner, data)
    return hashlib.sha256(data).hexdigest()


def read_artifact(path: str | Path, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """The artifact's bytes (``FileNotFoundError`` if it is gone)."""
    fs, inner = storage.filesystem(str(path), storage_options)
    return bytes(fs.cat_file(inner))


def load_artifact(
    path: str | Path | bytes, storage_options: Mapping[str, Any] | None = None
) -> Any:
    """The model in ``path`` (or the artifact's bytes); raises ``ValueError`` for anything
    but a skops file holding only trusted types (a pickle, a tampered or foreign file)."""
    data = path if isinstance(path, bytes) else read_artifact(path, storage_options)
    try:
        return sio.load(io.BytesIO(data), trusted=list(TRUSTED_TYPES))
    except (zipfile.BadZipFile, UntrustedTypesFoundException, KeyError) as exc:
        shown = "the artifact" if isinstance(path, bytes) else path
        raise ValueError(f"{shown} is not a trusted skops model: {exc}") from exc


def _algorithm(pipeline: Pipeline) -> str:
    model = pipeline.named_steps["model"]
    return f"{type(model).__module__.split('._')[0]}.{type(model).__name__}"


def _model_params(pipeline: Pipeline) -> dict[str, Any]:
    params = pipeline.named_steps["model"].get_params()
    return {k: v for k, v in params.items() if isinstance(v, str | int | float | bool | None)}


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: jsonb rejects NaN and infinities, and numpy scalars need unwrapping."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fit_and_score(
    pipeline: Pipeline,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_test: pd.DataFrame,
    y_test: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """Fit ``pipeline``; its held-out metrics, F1 threshold, fit time and importance."""
    with threadpool_limits(limits=MODEL_THREADS):
        fit_started = time.perf_counter()
        pipeline.fit(x_train, y_train)
        fit_seconds = time.perf_counter() - fit_started
        proba = pipeline.predict_proba(x_test)[:, 1]
        importance = feature_importance(pipeline, x_test, y_test, seed)
    return {
        **evaluate(y_test, proba),
        "threshold": best_threshold(y_test, proba),
        "fit_seconds": round(fit_seconds, 3),
        "feature_importance": importance,
        "importance_method": (
            f"permutation, mean ROC AUC drop over {IMPORTANCE_REPEATS} shuffles"
            f" on at most {IMPORTANCE_ROWS} held-out flights"
        ),
    }


def train(
    settings: Settings, *, max_train_rows: int = MAX_TRAIN_ROWS, seed: int = 0
) -> TrainResult:
    """Fit, evaluate and register both models on the warehouse's flights; see the module doc.

    Raises :class:`NotEnoughDataError` when the loaded flights cannot be split in time
    into two sets with both classes.
    """
    started = time.perf_counter()
    with connect(settings, "ml") as conn:
        frame = training_frame(conn)
    if frame.empty:
        raise NotEnoughDataError("the warehouse holds no flight with an arrival delay")
    split = time_split(frame)
    train_rows = cap_rows(split.train, max_train_rows, seed)
    x_train, y_train = feature_matrix(train_rows), train_rows[LABEL].to_numpy()
    x_test, y_test = feature_matrix(split.test), split.test[LABEL].to_numpy()

    prior = DummyClassifier(strategy="prior").fit(x_train, y_train)
    baseline = evaluate(y_test, prior.predict_proba(x_test)[:, 1])

    training_id = uuid.uuid4().hex[:12]
    data_from: date = train_rows["flight_date"].min()
    data_to: date = train_rows["flight_date"].max()
    common_params = {
        "training_id": training_id,
        "features": list(FEATURES),
        "categorical": list(CATEGORICAL),
        "label": f"arr_delay_min > {LATE_MINUTES}",
        "split": split.method,
        "test_from": split.test_from.isoformat(),
        "max_train_rows": max_train_rows,
        "seed": seed,
    }
    fitted: list[tuple[str, Pipeline, dict[str, Any], str, str]] = []
    for short, pipeline in (
        ("logreg", logistic_pipeline(seed)),
        ("hgb", boosting_pipeline(seed)),
    ):
        scored = fit_and_score(pipeline, x_train, y_train, x_test, y_test, seed)
        metrics: dict[str, Any] = {
            **scored,
            "baseline": baseline,
            "n_train": len(train_rows),
            "n_train_available": len(split.train),
            "n_test": len(split.test),
            "positive_rate_train": float(y_train.mean()),
            "positive_rate_test": float(y_test.mean()),
            "test_from": str(split.test["flight_date"].min()),
            "test_to": str(split.test["flight_date"].max()),
        }
        artifact = storage.join(
            storage.zone_url(settings, "models"), f"{training_id}-{short}{ARTIFACT_SUFFIX}"
        )
        digest = save_artifact(pipeline, artifact, storage.storage_options(settings))
        fitted.append((short, pipeline, metrics, artifact, digest))
        log.info(
            "trained %s in %.1f s: ROC AUC %.3f (prior %.3f)",
            short,
            metrics["fit_seconds"],
            metrics["roc_auc"],
            baseline["roc_auc"],
        )

    # One transaction: a concurrent predict never sees half of a training registered.
    runs: list[ModelRun] = []
    with connect(settings, "ml") as conn, conn.transaction():
        for _short, pipeline, metrics, artifact, digest in fitted:
            algorithm = _algorithm(pipeline)
            params = {**common_params, "model": _model_params(pipeline)}
            row = conn.execute(
                _INSERT_RUN,
                {
                    "algorithm": algorithm,
                    "params": Jsonb(_jsonable(params)),
                    "data_from": data_from,
                    "data_to": data_to,
                    "metrics": Jsonb(_jsonable(metrics)),
                    "artifact_path": str(artifact),
                    "artifact_sha256": digest,
                },
            ).fetchone()
            assert row is not None
            runs.append(ModelRun(int(row[0]), algorithm, metrics, str(artifact), digest))
    best = max(runs, key=lambda r: r.metrics["roc_auc"])
    return TrainResult(
        training_id=training_id,
        runs=runs,
        baseline=baseline,
        serving_model_run_id=best.model_run_id,
        seconds=time.perf_counter() - started,
    )
