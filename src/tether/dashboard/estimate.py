"""Label-free performance estimates from predicted probabilities (confidence-based).

When a binary classifier's scores are calibrated, a row scored `p` is a positive with
probability `p`; the expected confusion matrix follows, and with it every metric,
before any label arrives (the idea behind CBPE). These are the dashboard's estimates;
they are only as good as the calibration.

>>> import numpy as np
>>> scores = np.array([0.9, 0.8, 0.3, 0.1])
>>> {name: round(value, 3) for name, value in estimate_metrics(scores).items()}
... # doctest: +NORMALIZE_WHITESPACE
{'accuracy': 0.825, 'precision': 0.85, 'recall': 0.81, 'f1': 0.829,
 'roc_auc': 0.863, 'log_loss': 0.44}
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ESTIMABLE", "estimate_metrics"]

ESTIMABLE = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"})


def estimate_metrics(scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Expected binary metrics for rows with positive-class probabilities `scores`."""
    p = np.clip(np.asarray(scores, dtype=float), 1e-15, 1 - 1e-15)
    p = p[np.isfinite(p)]
    if len(p) == 0:
        return {}
    predicted = p >= threshold
    tp, fp = p[predicted].sum(), (1 - p[predicted]).sum()
    fn, tn = p[~predicted].sum(), (1 - p[~predicted]).sum()
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "accuracy": float((tp + tn) / len(p)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": _expected_roc_auc(p),
        "log_loss": float(-(p * np.log(p) + (1 - p) * np.log(1 - p)).mean()),
    }


def _expected_roc_auc(p: np.ndarray) -> float:
    """Area under the ROC curve traced by expected true and false positive counts."""
    positives, negatives = p.sum(), (1 - p).sum()
    if positives <= 0 or negatives <= 0:
        return math.nan
    order = np.argsort(-p, kind="stable")
    tpr = np.concatenate([[0.0], np.cumsum(p[order]) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - p[order]) / negatives])
    return float(np.trapezoid(tpr, fpr))
