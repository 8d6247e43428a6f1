"""Live metrics from delayed labels, each with its sample size and a confidence interval.

Values come from `tether.scoring.evaluate` (the one metric table). Intervals: Wilson
score intervals for the proportions (accuracy, precision, recall), the Hanley-McNeil
standard error for ROC AUC, a normal interval on the mean per-row loss for log loss, MAE
and RMSE (through the MSE), and a seeded percentile bootstrap for F1, R2 and the
multiclass averages, which have no closed form. So a figure on 30 labels carries an
interval as wide as it deserves, and a figure the labels do not define (recall without a
positive label) has no value, no interval and a reason.

>>> import numpy as np
>>> y = np.array([0, 1] * 50); pred = y.copy(); pred[:10] = 1 - pred[:10]
>>> figures = live_metrics("binary_classification", y, pred)
>>> accuracy = figures["accuracy"]
>>> round(accuracy.value, 3), round(accuracy.lower, 3), round(accuracy.upper, 3), accuracy.n
(0.9, 0.826, 0.945, 100)
>>> no_positives = live_metrics("binary_classification", np.zeros(50), np.zeros(50))
>>> no_positives["recall"]
MetricEstimate(value=None, lower=None, upper=None, n=0, reason='no positive labels (recall is 0/0)')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy import stats

from tether.scoring import Confusion, Metric, Task, attempt, evaluate, metric

__all__ = ["MetricEstimate", "live_metrics", "wilson_interval"]

BOOTSTRAP_SAMPLES = 200
MAX_BOOTSTRAP_ROWS = 20_000


@dataclass(frozen=True)
class MetricEstimate:
    """A metric on `n` rows with its confidence interval [lower, upper]; `value` None
    (and no interval) where the rows do not define the metric, `reason` says why."""

    value: float | None
    lower: float | None
    upper: float | None
    n: int
    reason: str | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion.

    >>> [round(v, 4) for v in wilson_interval(27, 30)]
    [0.7438, 0.9654]
    """
    if n == 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _normal_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    mean = float(values.mean())
    half = z * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return mean, mean - half, mean + half


def _auc_interval(auc: float, positives: int, negatives: int,
                  confidence: float) -> tuple[float, float]:
    """Hanley & McNeil (1982) standard error of the ROC AUC."""
    if positives == 0 or negatives == 0 or math.isnan(auc):
        return math.nan, math.nan
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def _bootstrap(y_true: np.ndarray, y_pred: np.ndarray, statistic: str, confidence: float,
               seed: int) -> tuple[float, float]:
    """Percentile bootstrap, vectorised over resamples (no per-resample sklearn call);
    resamples that do not define the statistic (0/0) are left out."""
    rng = np.random.default_rng(seed)
    n = min(len(y_true), MAX_BOOTSTRAP_ROWS)
    rows = rng.integers(0, len(y_true), size=(BOOTSTRAP_SAMPLES, n))
    t, p = y_true[rows], y_pred[rows]
    if statistic == "f1":
        tp = ((t == 1) & (p == 1)).sum(axis=1)
        wrong = (t != p).sum(axis=1)
        denominator = 2 * tp + wrong
        values = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1),
                          np.nan)
    else:  # r2
        sse = ((t - p) ** 2).sum(axis=1)
        sst = ((t - t.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        values = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.nan)
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _generic_bootstrap(chosen: Metric, y_true: np.ndarray, y_pred: np.ndarray,
                       y_score: np.ndarray | None, classes: Sequence[Any] | None,
                       confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap through the metric's own formula (resamples it does not
    define are left out)."""
    rng = np.random.default_rng(seed)
    n = min(len(y_true), MAX_BOOTSTRAP_ROWS)
    values = []
    for _ in range(BOOTSTRAP_SAMPLES):
        rows = rng.integers(0, len(y_true), size=n)
        score = y_score[rows] if y_score is not None else None
        value, _ = attempt(partial(chosen.from_rows, y_true[rows], y_pred[rows], score,
                                   classes=classes))
        if value is not None:
            values.append(value)
    if not values:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _binary_bounds(y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray | None,
                   values: dict[str, float | None], confidence: float, seed: int,
                   ) -> dict[str, tuple[float, float]]:
    n = len(y_true)
    counts = Confusion.of_labels(y_true, y_pred)
    bounds = {"accuracy": wilson_interval(counts.tp + counts.tn, n, confidence),
              "precision": wilson_interval(counts.tp, int(counts.tp + counts.fp), confidence),
              "recall": wilson_interval(counts.tp, int(counts.tp + counts.fn), confidence),
              "f1": _bootstrap(y_true, y_pred, "f1", confidence, seed)}
    auc = values.get("roc_auc")
    if y_score is not None and auc is not None:
        positives = int(counts.tp + counts.fn)
        bounds["roc_auc"] = _auc_interval(auc, positives, n - positives, confidence)
    if y_score is not None and values.get("log_loss") is not None:
        score = np.clip(np.asarray(y_score, dtype=float), 1e-15, 1 - 1e-15)
        losses = -(y_true * np.log(score) + (1 - y_true) * np.log(1 - score))
        _, low, high = _normal_interval(losses, confidence)
        bounds["log_loss"] = (max(low, 0.0), high)
    return bounds


def _regression_bounds(y_true: np.ndarray, y_pred: np.ndarray, confidence: float,
                       seed: int) -> dict[str, tuple[float, float]]:
    errors = y_true - y_pred
    _, low, high = _normal_interval(np.abs(errors), confidence)
    bounds = {"mae": (max(low, 0.0), high)}
    _, low, high = _normal_interval(errors ** 2, confidence)
    bounds["rmse"] = (math.sqrt(max(low, 0.0)), math.sqrt(max(high, 0.0)))
    bounds["r2"] = _bootstrap(y_true, y_pred, "r2", confidence, seed)
    return bounds


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def live_metrics(task: Task | str, y_true: np.ndarray, y_pred: np.ndarray,
                 y_score: np.ndarray | None = None, *,
                 classes: Sequence[Any] | None = None, confidence: float = 0.95,
                 seed: int = 0) -> dict[str, MetricEstimate]:
    """Every metric of the task on the labeled rows, with intervals; {} without rows.

    `y_score`: positive-class probabilities (n,) for binary tasks, class probabilities
    (n, k) in `classes` order for multiclass ones."""
    kind = Task(task)
    if kind is Task.MULTICLASS:
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    else:
        y_true = np.asarray(y_true, dtype=float)
        y_pred = np.asarray(y_pred, dtype=float)
    n = len(y_true)
    if n == 0:
        return {}
    values = evaluate(kind, y_true, y_pred, y_score, classes=classes)
    if kind is Task.BINARY:
        bounds = _binary_bounds(y_true, y_pred, y_score, values, confidence, seed)
        counts = Confusion.of_labels(y_true, y_pred)
        sizes = {name: int(metric(kind, name).support(counts)) for name in values}
    elif kind is Task.REGRESSION:
        bounds = _regression_bounds(y_true, y_pred, confidence, seed)
        sizes = dict.fromkeys(values, n)
    else:
        correct = float(np.count_nonzero(y_true == y_pred))
        bounds = {"accuracy": wilson_interval(correct, n, confidence)}
        sizes = dict.fromkeys(values, n)
    found = {}
    for name, value in values.items():
        if value is None:
            found[name] = MetricEstimate(None, None, None, sizes[name], values.reasons[name])
            continue
        if name not in bounds:  # multiclass averages and log loss: no closed form here
            bounds[name] = _generic_bootstrap(metric(kind, name), y_true, y_pred, y_score,
                                              classes, confidence, seed)
        low, high = bounds[name]
        found[name] = MetricEstimate(value, _finite(low), _finite(high), sizes[name])
    return found
