"""Undefined is null, with a reason, in every output: a window with no positive label has
no recall (0/0), in `tether backtest`, `tether monitor`, the gauges and the estimates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from tests.conftest import use_trained
from tether.cli import app
from tether.example.loans import generate
from tether.monitoring.exporter import MonitoringCollector
from tether.monitoring.monitor import Monitor
from tether.project import Project
from tether.store import PredictionRecord


def make(n: int, seed: int) -> pd.DataFrame:
    """The data of the recall-undefined-reported-zero case: a calibrated score of x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(x * 1.5 - 0.5)))
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"x": x, "proba": p.round(6), "y": y})


def test_backtest_chunk_with_one_class_reports_null_with_reason(tmp_path: Path) -> None:
    make(2000, 1).to_csv(tmp_path / "reference.csv", index=False)
    analysis = make(600, 2)
    analysis.loc[200:399, "y"] = 0   # chunk 1: no positive labels at all
    analysis.loc[400:599, "y"] = 1   # chunk 2: no negative labels at all
    analysis.to_csv(tmp_path / "analysis.csv", index=False)
    result = CliRunner().invoke(app, [
        "backtest", "--reference", str(tmp_path / "reference.csv"),
        "--analysis", str(tmp_path / "analysis.csv"), "--target", "y", "--proba", "proba",
        "--chunk-size", "200", "--json"])
    assert result.exit_code == 0, result.output
    chunks = json.loads(result.stdout)["chunks"]

    no_positives = chunks[1]
    realized = no_positives["realized"]
    assert realized["recall"] is None
    assert realized["roc_auc"] is None
    # predicted positives exist and none is right: precision and F1 are a true 0
    assert realized["precision"] == 0.0 and realized["f1"] == 0.0
    assert no_positives["undefined"]["realized"] == {
        "recall": "no positive labels (recall is 0/0)",
        "roc_auc": "the labels hold one class only (all 0)"}

    no_negatives = chunks[2]["realized"]
    assert no_negatives["roc_auc"] is None and no_negatives["recall"] is not None
    assert chunks[2]["undefined"]["realized"]["roc_auc"] == \
        "the labels hold one class only (all 1)"
    # the first chunk has both classes: every metric is a number, nothing undefined
    assert None not in chunks[0]["realized"].values()
    assert "realized" not in chunks[0]["undefined"]


def _log_all_negative(project: Project, version: int, rows: int) -> None:
    """Served predictions whose labels so far are all 0 (a few predicted positive)."""
    model = project.registry.load_model(version)
    features = generate(rows, seed=21).drop(columns="default")
    predictions = model.predict(features)
    assert model.predict_proba is not None
    scores = model.predict_proba(features)[:, 1]
    assert 0 < predictions.sum() < rows
    project.store.log_predictions([
        PredictionRecord(id=f"n{i}", model_name=project.model_name, model_version=version,
                         route="champion", features=row, prediction=float(predictions[i]),
                         score=float(scores[i]), latency_ms=2.0, error=False, ts=1000.0 + i)
        for i, row in enumerate(features.to_dict("records"))])
    project.store.add_feedback([(f"n{i}", 0.0) for i in range(rows)])


@pytest.fixture
def all_negative(project: Project, project_dir: Path, trained_template: Path) -> Project:
    use_trained(project_dir, trained_template)
    _log_all_negative(project, 1, 400)
    return project


def test_monitor_json_and_gauges_leave_undefined_recall_out(all_negative: Project) -> None:
    project = all_negative
    result = CliRunner().invoke(app, ["--config", str(project.config.path), "monitor",
                                      "--version", "1", "--json"])
    assert result.exit_code == 0, result.output
    snap = json.loads(result.stdout)
    assert snap["live"]["recall"] == {"value": None, "lower": None, "upper": None, "n": 0,
                                      "reason": "no positive labels (recall is 0/0)"}
    assert snap["live"]["roc_auc"]["value"] is None
    assert snap["live"]["accuracy"]["value"] < 1.0  # defined: some rows predicted 1
    assert snap["live"]["precision"]["value"] == 0.0
    assert snap["undefined"]["live"]["recall"] == "no positive labels (recall is 0/0)"

    registry = CollectorRegistry()
    registry.register(MonitoringCollector(Monitor(project), lambda: [(1, "champion")]))
    labels = {"model": project.model_name, "version": "1", "route": "champion"}
    live = {m: registry.get_sample_value("tether_live_metric", {**labels, "metric": m})
            for m in ("recall", "roc_auc", "precision", "accuracy")}
    assert live["recall"] is None and live["roc_auc"] is None  # absent, not 0
    assert live["precision"] == 0.0 and live["accuracy"] is not None
    assert registry.get_sample_value("tether_live_metric_ci_upper",
                                     {**labels, "metric": "recall"}) is None


def test_a_reference_that_cannot_calibrate_leaves_estimates_null_with_the_reason() -> None:
    from tether.monitoring.backtest import backtest

    reference = make(40, 1)  # calibration needs 50 scored rows with a target
    result = backtest(reference, make(300, 2), chunk_size=100, target="y", proba="proba",
                      min_rows=10)
    chunk = result["chunks"][0]
    assert set(chunk["estimated"].values()) == {None}
    assert chunk["undefined"]["estimated"]["accuracy"] == (
        "the reference cannot calibrate the scores (calibration needs at least 50 scored "
        "rows with a target, got 40)")
    assert chunk["realized"]["accuracy"] is not None  # the rest of the backtest runs
