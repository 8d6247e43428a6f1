"""Live metrics with intervals, and label-free estimates, on generated data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from tether.errors import DataError
from tether.monitoring.estimation import Calibrator, estimate_performance, expected_errors
from tether.monitoring.live import live_metrics


def calibrated(n: int, seed: int, skew: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(1, 3, n) ** skew
    return score, (rng.random(n) < score).astype(float)


def test_classification_values_come_from_sklearn_with_intervals() -> None:
    score, y = calibrated(2000, 1)
    pred = (score >= 0.5).astype(float)
    figures = live_metrics("binary_classification", y, pred, score)
    assert figures["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert figures["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, score))
    assert figures["recall"].n == int(y.sum()) and figures["precision"].n == int(pred.sum())
    for name, estimate in figures.items():
        assert estimate.lower <= estimate.value <= estimate.upper, name


def test_interval_narrows_with_more_labels_and_covers_the_truth() -> None:
    widths = []
    for n in (30, 3000):
        score, y = calibrated(n, 2)
        accuracy = live_metrics("binary_classification", y, (score >= 0.5).astype(float),
                                score)["accuracy"]
        widths.append(accuracy.upper - accuracy.lower)
    assert widths[0] > 5 * widths[1]
    # Coverage over 200 windows of 200 labels: the truth is E[max(s, 1 - s)].
    rng = np.random.default_rng(3)
    truth = float(np.mean(np.maximum(*(lambda s: (s, 1 - s))(rng.beta(1, 3, 1_000_000)))))
    covered = 0
    for seed in range(200):
        score, y = calibrated(200, 100 + seed)
        accuracy = live_metrics("binary_classification", y, (score >= 0.5).astype(float))
        covered += accuracy["accuracy"].lower <= truth <= accuracy["accuracy"].upper
    assert 0.90 <= covered / 200 <= 0.99


def test_regression_metrics_and_one_class_windows() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=500)
    pred = y + rng.normal(scale=0.5, size=500)
    figures = live_metrics("regression", y, pred)
    assert figures["rmse"].value == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)))
    assert figures["rmse"].lower < figures["rmse"].value < figures["rmse"].upper
    assert figures["r2"].lower < figures["r2"].value < figures["r2"].upper
    one_class = live_metrics("binary_classification", np.ones(50), np.ones(50), np.full(50, .9))
    assert one_class["roc_auc"].value is None and one_class["accuracy"].value == 1.0
    assert one_class["roc_auc"].reason == "the labels hold one class only (all 1)"
    assert live_metrics("binary_classification", np.array([]), np.array([])) == {}


def test_estimates_track_realized_metrics_under_covariate_shift() -> None:
    score, y = calibrated(20_000, 5)
    calibrator = Calibrator.fit(score, y)
    for seed, skew in ((6, 1.0), (7, 0.5), (8, 2.0)):
        new_score, new_y = calibrated(20_000, seed, skew)
        pred = (new_score >= 0.5).astype(float)
        estimate = estimate_performance(calibrator, new_score, pred)
        assert estimate["accuracy"] == pytest.approx(skm.accuracy_score(new_y, pred), abs=0.01)
        assert estimate["roc_auc"] == pytest.approx(skm.roc_auc_score(new_y, new_score),
                                                    abs=0.015)
        # F1 rests on the few predicted positives when scores are skewed low.
        assert estimate["f1"] == pytest.approx(skm.f1_score(new_y, pred), abs=0.04)


def test_uncalibrated_scores_are_calibrated_by_the_holdout() -> None:
    score, y = calibrated(20_000, 9)
    squashed = score ** 3  # same ranking, wrong probabilities
    calibrator = Calibrator.fit(squashed, y)
    assert np.abs(calibrator(squashed) - score).mean() < 0.03
    wrong = expected_errors(calibrator, squashed, np.ones(len(squashed)))
    assert wrong.mean() == pytest.approx(1 - y.mean(), abs=0.01)


def test_estimation_bad_input() -> None:
    with pytest.raises(DataError, match="at least 50"):
        Calibrator.fit(np.random.default_rng(0).random(10), np.zeros(10))
    with pytest.raises(DataError, match="0/1 target"):
        Calibrator.fit(np.linspace(0, 1, 100), np.linspace(0, 5, 100))
    calibrator = Calibrator.fit(*calibrated(1000, 10))
    empty = estimate_performance(calibrator, np.array([]), np.array([]))
    assert set(empty.values()) == {None} and empty.reasons["accuracy"] == "no scored rows"
    partly = estimate_performance(calibrator, np.array([0.2, np.nan, np.inf, 0.9]),
                                  np.array([0, 1, 1, 1]))
    assert 0 <= partly["accuracy"] <= 1
    constant = estimate_performance(calibrator, np.full(100, 0.3), np.zeros(100))
    assert constant["roc_auc"] is None
    assert constant.reasons["roc_auc"] == "every score is the same, so nothing is ranked"
    assert Calibrator.from_dict(calibrator.as_dict()) == calibrator
