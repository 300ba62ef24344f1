"""The model code without a database: time split, sampling, pipelines, JSON safety."""

from __future__ import annotations

import json
import math
import os
import pickle
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.metrics import roc_auc_score

from flightpipe.ml.features import CATEGORICAL, FEATURES, LABEL, NUMERIC, feature_matrix
from flightpipe.ml.train import (
    NotEnoughDataError,
    _jsonable,
    best_threshold,
    boosting_pipeline,
    cap_rows,
    evaluate,
    feature_importance,
    load_artifact,
    logistic_pipeline,
    roc_auc_columns,
    save_artifact,
    sha256_of,
    time_split,
)


def synthetic(days: list[date], per_day: int = 60, seed: int = 0) -> pd.DataFrame:
    """Flights whose lateness depends on the hour and the carrier, like the real ones."""
    rng = np.random.default_rng(seed)
    n = len(days) * per_day
    frame = pd.DataFrame(
        {
            "flight_key": np.arange(1, n + 1),
            "flight_date": np.repeat(days, per_day),
            "carrier": rng.choice(["AA", "B6", "EV"], n),
            "origin": rng.choice(["EWR", "JFK", "LGA"], n),
            "dest": rng.choice(["ATL", "BOS", "ORD", "LAX"], n),
            **{c: rng.normal(size=n) for c in NUMERIC},
        }
    )
    frame["sched_hour"] = rng.integers(5, 24, n).astype(float)
    frame["plane_age"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 30, n))
    frame["sched_dep_at"] = pd.to_datetime(frame["flight_date"]).dt.tz_localize(
        "UTC"
    ) + pd.to_timedelta(frame["sched_hour"], unit="h")
    logit = -2.0 + 0.15 * (frame["sched_hour"] - 5) + (frame["carrier"] == "EV") * 0.8
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return frame


def year_days(months: int) -> list[date]:
    start = date(2013, 1, 1)
    end = date(2013, months + 1, 1) if months < 12 else date(2014, 1, 1)
    return [start + timedelta(d) for d in range((end - start).days)]


def test_whole_year_holds_out_the_last_quarter_of_months() -> None:
    split = time_split(synthetic(year_days(12), per_day=5))
    assert split.train["flight_date"].max() == date(2013, 9, 30)
    assert split.test["flight_date"].min() == date(2013, 10, 1)
    assert "last 3 of 12 months" in split.method


def test_three_months_hold_out_the_last_month() -> None:
    split = time_split(synthetic(year_days(3), per_day=5))
    assert split.test["flight_date"].min() == date(2013, 3, 1)


def test_a_few_days_split_by_date_at_75_percent() -> None:
    days = [date(2013, 1, d) for d in range(1, 9)]
    split = time_split(synthetic(days))
    assert split.train["flight_date"].max() == date(2013, 1, 6)
    assert split.test["flight_date"].min() == date(2013, 1, 7)


def test_one_day_splits_by_departure_time() -> None:
    split = time_split(synthetic([date(2013, 1, 1)], per_day=400))
    assert split.train["sched_dep_at"].max() < split.test["sched_dep_at"].min()
    assert "departure" in split.method


def test_too_little_data_is_a_clear_error() -> None:
    with pytest.raises(NotEnoughDataError):
        time_split(synthetic([date(2013, 1, 1)], per_day=40))


def test_cap_rows_is_deterministic() -> None:
    frame = synthetic(year_days(1))
    a = cap_rows(frame, 100, seed=3)
    b = cap_rows(frame.sample(frac=1.0, random_state=9), 100, seed=3)
    assert len(a) == 100
    assert sorted(a["flight_key"]) == sorted(b["flight_key"])
    assert cap_rows(frame, 10_000, seed=3) is frame


@pytest.mark.parametrize("make", [logistic_pipeline, boosting_pipeline])
def test_pipelines_learn_and_survive_unknown_categories(make, tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = synthetic(year_days(2), per_day=40)
    split = time_split(frame)
    model = make(0).fit(feature_matrix(split.train), split.train[LABEL])
    x_test = feature_matrix(split.test)
    proba = model.predict_proba(x_test)[:, 1]
    assert evaluate(split.test[LABEL].to_numpy(), proba)["roc_auc"] > 0.6
    unseen = x_test.head(5).copy()
    unseen["dest"] = "ZZZ"
    unseen["carrier"] = None
    assert model.predict_proba(unseen).shape == (5, 2)
    path = tmp_path / "m.skops"
    digest = save_artifact(model, path)
    assert digest == sha256_of(path) and len(digest) == 64
    assert np.allclose(load_artifact(path).predict_proba(x_test)[:, 1], proba)


class _RunsOnLoad:
    """Unpickling this writes a file: what a hostile model artifact could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "code ran"))  # type: ignore[return-value]


def test_a_pickle_artifact_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(pickle.dumps(_RunsOnLoad(marker)))
    with pytest.raises(ValueError, match="not a trusted skops model"):
        load_artifact(artifact)
    assert not marker.exists()


def test_a_skops_artifact_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    # A skops file is a zip of a schema; one naming a type outside the trusted list (here a
    # function able to run commands) must not load.
    artifact = tmp_path / "model.skops"
    sio.dump({"f": os.system}, artifact)
    with pytest.raises(ValueError, match="not a trusted skops model"):
        load_artifact(artifact)


def test_feature_matrix_order() -> None:
    frame = synthetic([date(2013, 1, 1)], per_day=3)
    assert list(feature_matrix(frame).columns) == list(FEATURES)
    assert set(CATEGORICAL) <= set(FEATURES)


def test_best_threshold_is_a_probability() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.7, 0.8, 0.3, 0.4])
    assert 0.0 < best_threshold(y, p) <= 0.8


def test_metrics_json_is_valid_for_jsonb() -> None:
    value = {"a": math.nan, "b": [np.float64(1.5), math.inf], "c": {"d": np.int64(2)}}
    text = json.dumps(_jsonable(value), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": {"d": 2}}


def test_roc_auc_columns_matches_roc_auc_score_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.random((300, 4)), 1)  # coarse: many ties
    expected = [roc_auc_score(y, scores[:, i]) for i in range(scores.shape[1])]
    assert np.allclose(roc_auc_columns(y, scores), expected)


@pytest.mark.parametrize("make", [logistic_pipeline, boosting_pipeline])
def test_importance_ranks_the_features_the_label_depends_on(make) -> None:  # type: ignore[no-untyped-def]
    split = time_split(synthetic(year_days(3), per_day=60))
    model = make(0).fit(feature_matrix(split.train), split.train[LABEL])
    x_test, y_test = feature_matrix(split.test), split.test[LABEL].to_numpy()
    importance = feature_importance(model, x_test, y_test, seed=0)
    assert list(importance) == list(FEATURES)
    assert max(importance, key=importance.__getitem__) == "sched_hour"
    assert importance["carrier"] > 0
    assert feature_importance(model, x_test, y_test, seed=0) == importance
