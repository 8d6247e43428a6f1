"""Monitor snapshots and the Prometheus collector on a real project (MLflow + SQLite)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import use_trained
from tether.example.loans import generate
from tether.monitoring.exporter import MonitoringCollector
from tether.monitoring.monitor import Monitor
from tether.monitoring.profile import Profile
from tether.project import Project
from tether.store import PredictionRecord


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def serve(project: Project, version: int, rows: int, *, seed: int, shift: float = 0.0,
          concept: float = 0.0, start: float = 1000.0, route: str = "champion",
          labels: bool = True, prefix: str = "p", failures: int = 0) -> None:
    """Predict `rows` generated loans with the version, log them, and send their labels."""
    model = project.registry.load_model(version)
    data = generate(rows, seed=seed, shift=shift, concept=concept)
    features = data.drop(columns="default")
    predictions = model.predict(features)
    assert model.predict_proba is not None
    scores = model.predict_proba(features)[:, 1]
    records = []
    for i, row in enumerate(features.to_dict("records")):
        failed = i < failures
        records.append(PredictionRecord(
            id=f"{prefix}{i}", model_name=project.model_name, model_version=version,
            route=route, features=row, prediction=None if failed else float(predictions[i]),
            score=None if failed else float(scores[i]), latency_ms=1.0 + i % 10,
            error=failed, ts=start + i))
    project.store.log_predictions(records)
    if labels:
        project.store.add_feedback([(f"{prefix}{i}", float(y))
                                    for i, y in enumerate(data["default"])])


@pytest.fixture
def trained(project: Project, project_dir: Path, trained_template: Path) -> tuple[Project, int]:
    use_trained(project_dir, trained_template)
    return project, 1


def test_retrain_saves_a_profile_with_scores_and_calibration(trained: tuple[Project, int]) -> None:
    project, version = trained
    path = project.registry.reference_artifact(version, "profile.json")
    profile = Profile.from_dict(json.loads(path.read_text()))
    assert set(profile.features) == {"income", "loan_amount", "credit_score", "age",
                                     "employment_years", "debt_to_income", "late_payments",
                                     "home_ownership", "purpose"}
    assert profile.features["purpose"].kind == "categorical"
    assert profile.prediction_column == "_score"
    assert profile.calibration is not None and 0 < (profile.error_rate or 0) < 0.5


def test_snapshot_of_a_healthy_window(trained: tuple[Project, int]) -> None:
    project, version = trained
    serve(project, version, 600, seed=11, failures=6)
    clock = Clock()
    snap = Monitor(project, clock=clock).snapshot(version, "champion")
    assert snap.n_predictions == 600 and snap.n_labels == 594
    assert snap.label_coverage == pytest.approx(594 / 600)
    assert snap.error_rate == pytest.approx(0.01)
    assert snap.latency_p99_ms == pytest.approx(10.0)
    assert all(snap.enough_data.values()), snap.reasons
    accuracy = snap.live["accuracy"]
    assert accuracy.n == 594 and accuracy.lower < accuracy.value < accuracy.upper
    assert abs(snap.estimated["accuracy"] - accuracy.value) < 0.05
    assert abs(snap.estimated["roc_auc"] - snap.live["roc_auc"].value) < 0.06
    assert snap.drift is not None and snap.drift.share_drifted is not None
    assert snap.drift.share_drifted <= 0.25 and not snap.drift.drifted
    assert snap.change == {"error": False, "estimate": False}
    document = snap.as_dict()
    json.dumps(document, allow_nan=False)
    assert document["live"]["accuracy"]["n"] == 594


def test_snapshot_flags_drift_on_shifted_traffic(trained: tuple[Project, int]) -> None:
    project, version = trained
    serve(project, version, 800, seed=12, shift=0.8)
    snap = Monitor(project).snapshot(version)
    assert snap.drift is not None and snap.drift.drifted
    drifted = {f.name for f in snap.drift.features if f.drifted}
    assert {"income", "credit_score", "late_payments"} <= drifted
    assert snap.drift.prediction is not None and snap.drift.prediction.drifted


def test_small_windows_report_not_enough_data(trained: tuple[Project, int]) -> None:
    project, version = trained
    monitor = Monitor(project)
    empty = monitor.snapshot(version)
    assert empty.n_predictions == 0 and not any(empty.enough_data.values())
    assert empty.live == {} and empty.drift is None
    assert "not enough data" in empty.reasons["live"]
    serve(project, version, 20, seed=13, labels=False)
    tiny = monitor.snapshot(version)
    assert tiny.n_predictions == 20 and tiny.n_labels == 0 and tiny.label_coverage == 0
    assert tiny.live == {} and tiny.estimated == {}
    assert tiny.drift is not None and not tiny.drift.enough_data and not tiny.drift.drifted
    assert tiny.drift.share_drifted is None
    assert all(f.drifted is None for f in tiny.drift.features)


def test_error_detector_fires_on_concept_drift_and_only_new_rows_are_fed(
        trained: tuple[Project, int]) -> None:
    project, version = trained
    monitor = Monitor(project)
    serve(project, version, 1500, seed=14, prefix="a", start=0.0)
    first = monitor.snapshot(version, "champion", window=5000)
    assert first.change["error"] is False
    stream = monitor._streams[(version, "champion", "error")]
    assert stream.fed == 1500
    monitor.snapshot(version, "champion", window=5000)
    assert stream.fed == 1500
    serve(project, version, 3000, seed=15, concept=1.0, shift=0.5, prefix="b", start=2000.0)
    after = monitor.snapshot(version, "champion", window=5000)
    assert after.change["error"] is True and stream.alarms >= 1 and stream.fed == 4500
    assert stream.last_alarm is not None and stream.last_alarm >= 2000.0


def test_collector_exports_the_contract_gauges_and_caches(trained: tuple[Project, int]) -> None:
    project, version = trained
    serve(project, version, 600, seed=16)
    clock = Clock()
    monitor = Monitor(project, clock=clock)
    collector = MonitoringCollector(monitor, lambda: [(version, "champion")])
    registry = CollectorRegistry()
    registry.register(collector)
    labels = {"model": project.model_name, "version": str(version), "route": "champion"}
    accuracy = registry.get_sample_value("tether_live_metric", {**labels, "metric": "accuracy"})
    lower = registry.get_sample_value("tether_live_metric_ci_lower",
                                      {**labels, "metric": "accuracy"})
    assert accuracy is not None and lower is not None and lower < accuracy
    assert registry.get_sample_value("tether_live_metric_samples", labels) == 600
    assert registry.get_sample_value("tether_label_coverage_ratio", labels) == 1.0
    assert registry.get_sample_value("tether_estimated_metric",
                                     {**labels, "metric": "roc_auc"}) is not None
    version_labels = {"model": project.model_name, "version": str(version)}
    share = registry.get_sample_value("tether_drift_share_ratio", version_labels)
    assert share is not None and 0 <= share <= 1
    assert registry.get_sample_value("tether_feature_drift_score",
                                     {**version_labels, "feature": "income", "method": "ks"})
    assert registry.get_sample_value("tether_change_detected",
                                     {**version_labels, "stream": "error"}) == 0.0
    assert registry.get_sample_value("tether_prediction_drift_score", version_labels) is not None
    # Within the TTL a scrape reuses the snapshot: new rows are not seen yet.
    serve(project, version, 100, seed=17, prefix="late", start=5000.0)
    assert registry.get_sample_value("tether_live_metric_samples", labels) == 600
    clock.now += project.policy.monitoring.interval_seconds
    assert registry.get_sample_value("tether_live_metric_samples", labels) == 700
    assert not math.isnan(accuracy)
