"""Model quality figures from sklearn.metrics, by task, with their direction.

>>> import numpy as np
>>> figures = compute_metrics("binary_classification", np.array([0, 1, 1, 0]),
...     np.array([0, 1, 0, 0]), np.array([0.1, 0.9, 0.4, 0.2]))
>>> {k: round(v, 3) for k, v in figures.items()}
{'accuracy': 0.75, 'precision': 1.0, 'recall': 0.5, 'f1': 0.667, 'roc_auc': 1.0, 'log_loss': 0.338}
>>> better("log_loss", 0.2, 0.3), better("roc_auc", 0.2, 0.3)
(True, False)
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

__all__ = ["LOWER_IS_BETTER", "better", "compute_metrics", "improvement", "metric_value"]

LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


def compute_metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray,
                    y_score: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of the task that the data allows; NaN where it does not (one class)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if len(y_true) == 0:
        return {}
    if task == "regression":
        return {
            "rmse": float(math.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else math.nan,
        }
    figures = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
    }
    two_classes = len(np.unique(y_true)) == 2
    if y_score is not None:
        score = np.clip(np.asarray(y_score, dtype=float), 1e-15, 1 - 1e-15)
        figures["roc_auc"] = float(skm.roc_auc_score(y_true, score)) if two_classes else math.nan
        figures["log_loss"] = float(skm.log_loss(y_true, score, labels=[0, 1]))
    return figures


def metric_value(metric: str, task: str, y_true: np.ndarray, y_pred: np.ndarray,
                 y_score: np.ndarray | None = None) -> float:
    """One metric only (cheaper than `compute_metrics` when resampling); NaN if undefined."""
    if metric == "roc_auc":
        if y_score is None or len(np.unique(y_true)) < 2:
            return math.nan
        return float(skm.roc_auc_score(y_true, y_score))
    if metric == "accuracy":
        return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) \
            else math.nan
    return compute_metrics(task, y_true, y_pred, y_score).get(metric, math.nan)


def better(metric: str, candidate: float, baseline: float) -> bool:
    """True when `candidate` is strictly better than `baseline` for `metric`."""
    return improvement(metric, candidate, baseline) > 0


def improvement(metric: str, candidate: float, baseline: float) -> float:
    """How much better `candidate` is than `baseline`, positive when better."""
    delta = candidate - baseline
    return -delta if metric in LOWER_IS_BETTER else delta
