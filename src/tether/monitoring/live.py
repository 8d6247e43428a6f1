"""Live metrics from delayed labels, each with its sample size and a confidence interval.

Values come from `tether.scoring.compute_metrics` (sklearn.metrics). Intervals: Wilson
score intervals for the proportions (accuracy, precision, recall), the Hanley-McNeil
standard error for ROC AUC, a normal interval on the mean per-row loss for log loss, MAE
and RMSE (through the MSE), and a seeded percentile bootstrap for F1 and R2, which have
no closed form. So a figure on 30 labels carries an interval as wide as it deserves.

>>> import numpy as np
>>> y = np.array([0, 1] * 50); pred = y.copy(); pred[:10] = 1 - pred[:10]
>>> figures = live_metrics("binary_classification", y, pred)
>>> accuracy = figures["accuracy"]
>>> round(accuracy.value, 3), round(accuracy.lower, 3), round(accuracy.upper, 3), accuracy.n
(0.9, 0.826, 0.945, 100)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from tether.scoring import compute_metrics

__all__ = ["MetricEstimate", "live_metrics", "wilson_interval"]

BOOTSTRAP_SAMPLES = 200
MAX_BOOTSTRAP_ROWS = 20_000


@dataclass(frozen=True)
class MetricEstimate:
    """A metric on `n` rows with its confidence interval [lower, upper]."""

    value: float
    lower: float
    upper: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
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
    """Percentile bootstrap, vectorised over resamples (no per-resample sklearn call)."""
    rng = np.random.default_rng(seed)
    n = min(len(y_true), MAX_BOOTSTRAP_ROWS)
    rows = rng.integers(0, len(y_true), size=(BOOTSTRAP_SAMPLES, n))
    t, p = y_true[rows], y_pred[rows]
    if statistic == "f1":
        tp = ((t == 1) & (p == 1)).sum(axis=1)
        wrong = (t != p).sum(axis=1)
        denominator = 2 * tp + wrong
        values = np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)
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


def live_metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray,
                 y_score: np.ndarray | None = None, *, confidence: float = 0.95,
                 seed: int = 0) -> dict[str, MetricEstimate]:
    """Every metric of the task on the labeled rows, with intervals; {} without rows."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n = len(y_true)
    if n == 0:
        return {}
    values = compute_metrics(task, y_true, y_pred, y_score)
    bounds: dict[str, tuple[float, float]] = {}
    sizes: dict[str, int] = {name: n for name in values}
    if task == "regression":
        errors = y_true - y_pred
        _, low, high = _normal_interval(np.abs(errors), confidence)
        bounds["mae"] = (max(low, 0.0), high)
        _, low, high = _normal_interval(errors ** 2, confidence)
        bounds["rmse"] = (math.sqrt(max(low, 0.0)), math.sqrt(max(high, 0.0)))
        bounds["r2"] = _bootstrap(y_true, y_pred, "r2", confidence, seed)
    else:
        correct = float((y_true == y_pred).sum())
        bounds["accuracy"] = wilson_interval(correct, n, confidence)
        true_positive = float(((y_true == 1) & (y_pred == 1)).sum())
        predicted, actual = int((y_pred == 1).sum()), int((y_true == 1).sum())
        bounds["precision"] = wilson_interval(true_positive, predicted, confidence)
        bounds["recall"] = wilson_interval(true_positive, actual, confidence)
        sizes["precision"], sizes["recall"] = predicted, actual
        bounds["f1"] = _bootstrap(y_true, y_pred, "f1", confidence, seed)
        if y_score is not None and "roc_auc" in values:
            bounds["roc_auc"] = _auc_interval(values["roc_auc"], actual, n - actual, confidence)
            score = np.clip(np.asarray(y_score, dtype=float), 1e-15, 1 - 1e-15)
            losses = -(y_true * np.log(score) + (1 - y_true) * np.log(1 - score))
            _, low, high = _normal_interval(losses, confidence)
            bounds["log_loss"] = (max(low, 0.0), high)
    return {name: MetricEstimate(value=value, lower=bounds.get(name, (math.nan, math.nan))[0],
                                 upper=bounds.get(name, (math.nan, math.nan))[1],
                                 n=sizes[name])
            for name, value in values.items()}
