"""Labels of a regressor's predictions are finite numbers a metric can square: anything
else is a 400 naming the label, and nothing of that request is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from tests.cli import data_project
from tether.example import datasets
from tether.monitoring.monitor import Monitor
from tether.project import Project
from tether.serving import create_app
from tether.serving.server import MAX_NUMBER_LABEL
from tether.training import retrain

TRAINER = '''
from sklearn.linear_model import Ridge


def train(ctx):
    return Ridge().fit(ctx.X, ctx.y, sample_weight=ctx.sample_weight)
'''


@pytest.fixture
def project(tmp_path: Path, mlflow_template: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    path = data_project(tmp_path / "project", mlflow_template, monkeypatch,
                        data=datasets.diabetes(), trainer=TRAINER, policy={
        "model": {"name": "sugar", "task": "regression", "target": "target"},
        "trainer": "train:train",
        "data": {"reference": "data.csv", "holdout_fraction": 0.3, "seed": 7},
        "metric": {"primary": "rmse"},
        "monitoring": {"window_size": 1000, "min_labels": 10},
    })
    opened = Project.open(path)
    yield opened
    opened.store.close()


@pytest.mark.parametrize(("label", "said"), [
    (1e308, "finite numbers of at most 1e+150"),
    (-2 * MAX_NUMBER_LABEL, "finite numbers of at most 1e+150"),
    ("inf", "finite numbers"),
    ("NaN", "finite numbers"),
    (True, "numbers, not true/false"),
    ("about 150", "so its labels are numbers"),
])
def test_a_label_no_metric_can_score_is_refused_naming_it(project: Project, label: Any,
                                                          said: str) -> None:
    first = retrain(project)
    project.registry.promote(first.version, "first")
    rows = datasets.diabetes().drop(columns="target").head(20)
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with TestClient(app) as client:
        ids = client.post("/predict", json={"dataframe_records": rows.to_dict(
            orient="records")}).json()["ids"]
        refused = client.post("/feedback", json={"labels": [
            {"id": ids[0], "label": 151.0}, {"id": ids[1], "label": label}]})
        assert refused.status_code == 400
        message = refused.json()["message"]
        assert repr(label) in message and said in message, message
        assert project.store.prediction_window(project.model_name, labeled_only=True).empty

        # numbers as JSON numbers or as text, up to the bound, are labels
        good = [151.0, "75.5", MAX_NUMBER_LABEL / 1e140, -3] * 5
        answer = client.post("/feedback", json={"labels": [
            {"id": pid, "label": value} for pid, value in zip(ids, good, strict=True)]})
        assert answer.status_code == 200 and answer.json()["accepted"] == len(good)
    rmse = Monitor(project).snapshot(first.version, window=len(rows)).live["rmse"]
    assert rmse.value is not None and rmse.value > 0, rmse.reason
