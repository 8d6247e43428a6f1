"""Features named like the prediction log's own columns (`score`, `label`, `ts`, `id`,
`proba:0`, and one already called `feature:x`): trained, served, labelled, monitored and
retrained on a real MLflow registry (SQLite) and store, each read back as the feature it
is, never as the model's score or the label."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from tests.cli import data_project
from tether.example import datasets
from tether.monitoring.monitor import Monitor
from tether.outputs import window_features
from tether.project import Project
from tether.serving import create_app
from tether.training import retrain

TRAINER = '''
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(ctx):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(ctx.X, ctx.y, logisticregression__sample_weight=ctx.sample_weight)
    return model
'''

NAMES = {"mean_radius": "score", "mean_texture": "label", "mean_concave_points": "ts",
         "worst_area": "id", "worst_smoothness": "proba:0", "mean_symmetry": "feature:x"}


def _data() -> pd.DataFrame:
    frame = datasets.breast_cancer()
    return frame[[*NAMES, "target"]].rename(columns=NAMES)


@pytest.fixture
def project(tmp_path: Path, mlflow_template: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    path = data_project(tmp_path / "project", mlflow_template, monkeypatch, data=_data(),
                        trainer=TRAINER, policy={
        "model": {"name": "named", "task": "binary_classification", "target": "target"},
        "trainer": "train:train",
        "data": {"reference": "data.csv", "holdout_fraction": 0.3, "seed": 7},
        "metric": {"primary": "roc_auc"},
        "gate": {"min_delta": -1.0, "max_latency_ms": 2000, "max_latency_ratio": 20.0},
        # a window of one pass over the data: the latest one is what the checks read
        "monitoring": {"window_size": len(_data()), "min_labels": 30},
    })
    opened = Project.open(path)
    yield opened
    opened.store.close()


def _serve(client: TestClient, rows: pd.DataFrame) -> None:
    answer = client.post("/predict", json={"dataframe_records": rows.drop(
        columns="target").to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    labels = [{"id": pid, "label": int(y)}
              for pid, y in zip(answer.json()["ids"], rows["target"], strict=True)]
    assert client.post("/feedback", json={"labels": labels}).status_code == 200


def test_features_named_like_the_logs_columns_are_read_back_as_features(
        project: Project) -> None:
    data = _data()
    first = retrain(project)
    assert first.metrics["holdout_roc_auc"] > 0.9
    project.registry.promote(first.version, "first")
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with TestClient(app) as client:
        _serve(client, data)

        # the window keeps the log's columns and the features side by side
        window = project.store.prediction_window(project.model_name)
        assert {"score", "feature:score", "label", "feature:label", "ts", "feature:ts",
                "id", "feature:id", "feature:proba:0", "feature:feature:x"} <= set(window)
        assert window["score"].between(0, 1).all()  # the model's score, not mean_radius
        assert window["label"].isin([0, 1]).all()  # the label, not mean_texture
        served = window_features(window)
        assert served.columns.tolist() == list(NAMES.values())
        pd.testing.assert_frame_equal(served.reset_index(drop=True),
                                      data[list(NAMES.values())], check_dtype=False)

        # live metrics from the labels; drift of the features themselves
        snapshot = Monitor(project).snapshot(first.version)
        assert snapshot.n_labels == len(data)
        auc = snapshot.live["roc_auc"].value
        assert auc is not None and auc > 0.9
        assert snapshot.drift is not None and not snapshot.drift.drifted
        assert [f.name for f in snapshot.drift.features] == list(NAMES.values())
        assert snapshot.drift.missing_columns == []

        # the feature called `score` shifts; the model's score is not what drifted
        shifted = data.assign(score=data["score"] + 3 * data["score"].std())
        for start in range(0, len(shifted), 100):
            _serve(client, shifted.iloc[start:start + 100])
    drift = Monitor(project).snapshot(first.version).drift
    assert drift is not None and drift.rows_current == len(shifted)
    assert [f.name for f in drift.features if f.drifted] == ["score"]

    # a retrain learns from the served rows, features under their own names
    second = retrain(project, reason="labels")
    assert second.rows["recent"] == 2 * len(data)
    assert second.metrics["holdout_roc_auc"] > 0.9
