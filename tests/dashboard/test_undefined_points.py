"""A chart point whose bucket does not define the metric is null with the metric's own
reason, whichever source the point comes from (running totals, histograms, samples)."""

from __future__ import annotations

import time

import pytest

from tether.dashboard.payloads import TimeRange, timeseries_payload
from tether.project import Project
from tether.store import PredictionRecord


def _log(project: Project, now: float, labels: float) -> None:
    """Two minutes of predictions, a third predicted positive, every label `labels`."""
    records = [PredictionRecord(id=f"u{i}", model_name=project.model_name, model_version=1,
                                route="champion", features={"x": float(i)},
                                prediction=float(i % 3 == 0), score=0.9 if i % 3 == 0 else 0.1,
                                latency_ms=2.0, error=False, ts=now - 120 + i)
               for i in range(120)]
    project.store.log_predictions(records)
    project.store.add_feedback([(f"u{i}", labels) for i in range(120)])


@pytest.mark.parametrize(("metric", "labels", "value", "reason"), [
    ("recall", 0.0, None, "no positive labels (recall is 0/0)"),            # totals
    ("precision", 0.0, 0.0, None),                                           # a true 0
    ("roc_auc", 1.0, None, "the labels hold one class only"),                # histograms
    ("log_loss", 1.0, "defined", None),                                      # samples
])
def test_undefined_points_are_null_with_the_reason(empty_project: Project, metric: str,
                                                   labels: float, value: object,
                                                   reason: str | None) -> None:
    now = time.time()
    _log(empty_project, now, labels)
    payload = timeseries_payload(empty_project, TimeRange.parse("3600", "600", now=now + 1),
                                 metric)
    points = [p for s in payload["series"] for p in s["points"] if p["labeled"] >= 10]
    assert points, payload
    for point in points:
        if value == "defined":
            assert point["live_metric"] is not None and point["live_reason"] is None
        else:
            assert point["live_metric"] == value
            assert point["live_reason"] == reason
