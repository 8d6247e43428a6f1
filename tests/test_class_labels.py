"""Classifiers whose classes are not 0..k-1: iris species by name, a "yes"/"no" binary
model and wine cultivars 1, 2, 3. Each is trained by tether, served by the real app on a
real MLflow registry (SQLite) and store, labelled through /feedback with its own
classes, monitored, retrained on those labels, and canaried against the next version.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from tests.cli import empty_project
from tether.classes import ClassCodes, LabelNotAClass
from tether.config import RolloutPolicy
from tether.control.analysis import assess
from tether.control.observe import arm_stats
from tether.dashboard.payloads import TimeRange, timeseries_payload
from tether.example import datasets
from tether.monitoring.exporter import MonitoringCollector
from tether.monitoring.monitor import Monitor
from tether.project import Project
from tether.registry import RolloutSpec
from tether.serving import create_app
from tether.training import retrain

TOKEN = "s3cret"
TRAINER = '''
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(ctx):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(ctx.X, ctx.y, logisticregression__sample_weight=ctx.sample_weight)
    return model
'''


def _cancer_yes_no() -> pd.DataFrame:
    frame = datasets.breast_cancer()
    # a handful of columns keeps the model quick; "yes": the tumour is benign
    kept = frame[["mean_radius", "mean_texture", "mean_concave_points", "worst_area",
                  "worst_smoothness"]]
    return kept.assign(benign=np.where(frame["target"] == 1, "yes", "no"))


def _cancer_minus_one_one() -> pd.DataFrame:
    frame = _cancer_yes_no()  # 1: malignant, the positive class; -1: benign
    return frame.drop(columns="benign").assign(
        malignant=np.where(frame["benign"] == "yes", -1, 1))


def _wine_cultivars() -> pd.DataFrame:
    frame = datasets.wine()  # the UCI file names the cultivars 1, 2, 3
    return frame.drop(columns="target").assign(cultivar=frame["target"] + 1)


@dataclass(frozen=True)
class Case:
    data: Callable[[], pd.DataFrame]
    target: str
    task: str
    primary: str
    classes: list[Any]
    not_a_class: Any
    by_probability: tuple[str, ...]  # live metrics that need the class probabilities


CASES = {
    "species": Case(datasets.iris_species, "species", "multiclass_classification",
                    "f1_macro", ["setosa", "versicolor", "virginica"], "rose",
                    ("roc_auc_ovr", "log_loss")),
    "yes-no": Case(_cancer_yes_no, "benign", "binary_classification", "roc_auc",
                   ["no", "yes"], "maybe", ("roc_auc", "log_loss")),
    "one-two-three": Case(_wine_cultivars, "cultivar", "multiclass_classification",
                          "f1_macro", [1, 2, 3], "one", ("roc_auc_ovr", "log_loss")),
    "minus-one-one": Case(_cancer_minus_one_one, "malignant", "binary_classification",
                          "roc_auc", [-1, 1], 0, ("roc_auc", "log_loss")),
}


def _write(folder: Path, case: Case) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    case.data().to_csv(folder / "data.csv", index=False)
    (folder / "train.py").write_text(TRAINER)
    policy = {
        "model": {"name": "labelled", "task": case.task, "target": case.target},
        "trainer": "train:train",
        "data": {"reference": "data.csv", "holdout_fraction": 0.35, "seed": 7,
                 "recent_labeled_rows": 5000},
        "metric": {"primary": case.primary},
        "gate": {"min_delta": -1.0, "max_latency_ms": 2000, "max_latency_ratio": 20.0},
        "monitoring": {"window_size": 2000, "min_labels": 30},
    }
    path = folder / "tether.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@pytest.fixture(params=list(CASES))
def labelled(request: pytest.FixtureRequest, tmp_path: Path, mlflow_template: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Case, Project]]:
    case = CASES[request.param]
    folder = tmp_path / "project"
    path = _write(folder, case)
    (folder / ".tether").mkdir()
    shutil.copyfile(mlflow_template, folder / ".tether" / "mlflow.db")
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", TOKEN)
    monkeypatch.chdir(folder)
    project = Project.open(path)
    yield case, project
    project.store.close()


def _predict(client: TestClient, rows: pd.DataFrame, target: str
             ) -> tuple[list[str], list[Any], list[int]]:
    features = rows.drop(columns=target)
    answer = client.post("/predict", json={"dataframe_records":
                                           features.to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["ids"], body["predictions"], [body["model_version"]] * len(rows)


def _feedback(client: TestClient, ids: list[str], labels: list[Any]) -> dict[str, Any]:
    answer = client.post("/feedback", json={"labels": [
        {"id": pid, "label": label} for pid, label in zip(ids, labels, strict=True)]})
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _sent(value: Any, i: int) -> Any:
    """Labels as a client sends them: numbers as JSON numbers, every third as text."""
    plain = value.item() if isinstance(value, np.generic) else value
    return str(plain) if isinstance(plain, int) and i % 3 == 0 else plain


def test_a_model_with_its_own_classes_is_served_labelled_monitored_and_canaried(
        labelled: tuple[Case, Project]) -> None:
    case, project = labelled
    data = case.data()
    first = retrain(project)
    assert first.metrics[f"holdout_{case.primary}"] > 0.8
    project.registry.promote(first.version, "first")
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with TestClient(app) as client:
        # predictions are the model's classes, logged as their index in that list
        ids, predicted, _ = _predict(client, data, case.target)
        assert set(predicted) <= set(case.classes)
        truth = data[case.target].tolist()
        assert np.mean([p == t for p, t in zip(predicted, truth, strict=True)]) > 0.8
        logged = project.store.prediction_window(project.model_name).set_index("id")
        codes = ClassCodes(case.classes)
        assert logged.loc[ids, "prediction"].tolist() == codes.encode(predicted).tolist()

        # labels are the same classes; one that is none of them is a 400 naming it and
        # the known classes, and nothing of that request is written
        refused = client.post("/feedback", json={"labels": [
            {"id": ids[0], "label": truth[0]}, {"id": ids[1], "label": case.not_a_class}]})
        assert refused.status_code == 400
        message = refused.json()["message"]
        assert repr(case.not_a_class) in message
        assert all(repr(c) in message for c in case.classes), message
        assert project.store.prediction_window(project.model_name, labeled_only=True).empty
        labels = [_sent(v, i) for i, v in enumerate(truth)]
        assert _feedback(client, ids, labels) == {"accepted": len(ids), "unknown_ids": []}
        stored = project.store.prediction_window(project.model_name, labeled_only=True)
        assert stored.set_index("id").loc[ids, "label"].tolist() == codes.encode(
            np.array(truth, dtype=object)).tolist()

        # live metrics, the label-free estimate and prediction drift see the classes
        snapshot = Monitor(project).snapshot(first.version)
        assert snapshot.n_labels == len(data)
        accuracy = snapshot.live["accuracy"].value
        assert accuracy is not None and accuracy > 0.8
        for name in case.by_probability:
            assert snapshot.live[name].value is not None, snapshot.live[name].reason
        auc = snapshot.live[case.by_probability[0]].value
        assert auc is not None and auc > 0.9  # the probabilities' columns are the classes
        estimated, live = snapshot.estimated.get(case.primary), snapshot.live[case.primary].value
        assert estimated is not None and live is not None, snapshot.reasons
        assert abs(estimated - live) < 0.15
        assert snapshot.drift is not None and snapshot.drift.prediction is not None
        assert not snapshot.drift.prediction.drifted  # the holdout's classes, counted alike

        # the Prometheus gauges say the same
        gauges = CollectorRegistry()
        gauges.register(MonitoringCollector(Monitor(project),
                                            lambda: [(first.version, "champion")]))
        exported = gauges.get_sample_value("tether_live_metric", {
            "model": project.model_name, "version": str(first.version), "route": "champion",
            "metric": "accuracy"})
        assert exported is not None and exported > 0.8

        # the dashboard's live and estimated lines of the primary metric
        now = time.time()
        chart = timeseries_payload(project, TimeRange(now - 600, now + 1, 3600), case.primary)
        points = [p for series in chart["series"] for p in series["points"]]
        assert chart["estimate_source"] and points
        for point in points:
            assert point["live_metric"] == pytest.approx(live, abs=0.05), point
            assert point["estimated_metric"] == pytest.approx(estimated, abs=0.1), (
                point["estimated_reason"])

        # a retrain learns from those labels read back as classes
        second = retrain(project, reason="labels")
        assert second.rows["recent"] == len(data)
        assert second.metrics[f"holdout_{case.primary}"] > 0.8

        # the controller's canary analysis of version 2 against version 1, with numbers
        started = time.time()
        project.registry.start_rollout(RolloutSpec(version=second.version, mode="canary",
                                                   weight=0.5, started_at=started), "canary")
        reload = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reload.status_code == 200, reload.text
        # rows shuffled so that every request mixes the classes: requests are routed by
        # the hash of a random id, and an arm sent only some classes' rows (iris and wine
        # are sorted by class) would score a class it predicts but never sees at F1 0
        mixed = data.sample(frac=1.0, random_state=3)
        for _ in range(2):
            for start in range(0, len(mixed), 10):
                rows = mixed.iloc[start:start + 10]
                batch_ids, _, _ = _predict(client, rows, case.target)
                _feedback(client, batch_ids, rows[case.target].tolist())
    canary = arm_stats(project, second.version, "canary", since=started)
    champion = arm_stats(project, first.version, "champion", since=started)
    assert canary.labels > 30 and champion.labels > 30
    policy = RolloutPolicy(min_predictions=30, min_labels=30, max_metric_drop=0.2,
                           max_p99_latency_ms=60_000, max_latency_ratio=1000.0)
    analysis = assess(canary, champion, policy, primary=case.primary, task=case.task)
    numbers = analysis.numbers
    assert numbers["metric"] == case.primary
    assert numbers["challenger_value"] > 0.8 and numbers["champion_value"] > 0.8, numbers
    assert analysis.verdict.value == "pass", analysis.message


def test_what_the_store_keeps_for_each_kind_of_class() -> None:
    # numeric classes of a multiclass model: the number itself, any number a label
    cultivars = ClassCodes([1, 2, 3])
    assert [cultivars.code(v) for v in (1, 2.0, "3", np.int64(2), 0)] == [1, 2, 3, 2, 0]
    assert cultivars.codes == [1.0, 2.0, 3.0]
    with pytest.raises(LabelNotAClass, match=r"label 'one' is not a class .* 1, 2, 3"):
        cultivars.code("one")
    # a binary model's: the index, so 1.0 is the class its score is the probability of
    for classes, positive in (([-1, 1], 1), ([1, 2], 2), (["no", "yes"], "yes"),
                              ([False, True], True), ([0, 1], 1)):
        binary = ClassCodes(classes)
        assert binary.code(positive) == 1.0 and binary.codes == [0.0, 1.0]
        with pytest.raises(LabelNotAClass):
            binary.code(7)
    # text: the index; numbers and their spelling as text meet
    assert ClassCodes(["1", "2", "3"]).code(2) == 1.0
    species = ClassCodes(["setosa", "versicolor", "virginica"])
    assert species.decode(species.encode(["virginica", "setosa"])).tolist() == [
        "virginica", "setosa"]


LOG_PYFUNC = """
import mlflow, mlflow.pyfunc
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from tether.example.datasets import breast_cancer


class YesNo(mlflow.pyfunc.PythonModel):  # answers "yes"/"no", has no classes_
    def __init__(self, model):
        self.model = model

    def predict(self, context, model_input, params=None):
        return ["yes" if p == 1 else "no" for p in self.model.predict(model_input)]


mlflow.set_tracking_uri("sqlite:///.tether/mlflow.db")
frame = breast_cancer()[["mean_radius", "mean_texture", "worst_area", "target"]]
X = frame.drop(columns="target")
with mlflow.start_run():
    model = LogisticRegression(max_iter=5000).fit(X, frame["target"])
    info = mlflow.pyfunc.log_model(name="model", python_model=YesNo(model),
                                   input_example=X.head(3), registered_model_name="yes-no")
MlflowClient().set_registered_model_alias("yes-no", "prod", info.registered_model_version)
"""


def test_an_adopted_pyfunc_classifier_gets_its_classes_from_the_reference(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from tether.adopt import adopt

    empty_project(tmp_path, mlflow_template, monkeypatch)
    subprocess.run([sys.executable, "-c", LOG_PYFUNC], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300)
    frame = datasets.breast_cancer()[["mean_radius", "mean_texture", "worst_area", "target"]]
    data = frame.drop(columns="target").assign(
        benign=np.where(frame["target"] == 1, "yes", "no"))
    case = Case(lambda: data, "benign", "binary_classification", "accuracy", ["no", "yes"],
                "maybe", ())
    project = Project.open(_write(tmp_path, case))
    adopted = adopt(project, "models:/yes-no@prod")
    project.registry.promote(adopted.version, "adopted")
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with TestClient(app) as client:
        ids, predicted, _ = _predict(client, data, "benign")
        assert set(predicted) == {"yes", "no"}
        logged = project.store.prediction_window(project.model_name).set_index("id")
        assert logged.loc[ids, "prediction"].tolist() == [
            1.0 if p == "yes" else 0.0 for p in predicted]
        _feedback(client, ids, data["benign"].tolist())
        refused = client.post("/feedback", json={"labels": [{"id": ids[0], "label": 1}]})
        assert refused.status_code == 400 and "'no', 'yes'" in refused.json()["message"]
    snapshot = Monitor(project).snapshot(adopted.version)
    accuracy = snapshot.live["accuracy"].value
    assert accuracy is not None and accuracy > 0.8
    project.store.close()
