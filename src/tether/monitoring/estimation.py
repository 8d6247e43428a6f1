"""Performance without labels for binary classifiers: confidence-based estimation (CBPE).

A calibrator (isotonic regression, sklearn) is fitted on the reference holdout's score
against its target. On a live window, each row's calibrated probability p is the
chance that the true class is 1, so the expected confusion matrix is
TP = sum(p | predicted 1), FP = sum(1 - p | predicted 1), FN = sum(p | predicted 0),
TN = sum(1 - p | predicted 0), which gives expected accuracy, precision, recall and F1.
ROC AUC is estimated as sklearn's weighted AUC with every row counted once as a positive
(weight p) and once as a negative (weight 1 - p). This holds while the model stays
calibrated on the new data, i.e. under covariate shift, not under concept drift.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> score = rng.random(20_000); target = (rng.random(20_000) < score).astype(int)
>>> calibrator = Calibrator.fit(score, target)
>>> new_score = rng.random(5000) ** 2             # covariate shift: lower scores
>>> new_target = (rng.random(5000) < new_score).astype(int)   # labels we do not have yet
>>> estimate = estimate_performance(calibrator, new_score, (new_score >= 0.5).astype(int))
>>> round(estimate["accuracy"], 2), round(estimate["roc_auc"], 2)
(0.81, 0.88)
>>> from sklearn.metrics import accuracy_score, roc_auc_score
>>> realized = accuracy_score(new_target, new_score >= 0.5), roc_auc_score(new_target, new_score)
>>> tuple(round(float(v), 2) for v in realized)
(0.81, 0.88)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from tether.errors import DataError

__all__ = ["ESTIMATED_METRICS", "Calibrator", "estimate_performance", "expected_errors"]

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
MIN_CALIBRATION_ROWS = 50


@dataclass(frozen=True)
class Calibrator:
    """A monotone map score -> P(class 1), stored as its breakpoints (JSON-ready)."""

    x: list[float]
    y: list[float]

    @classmethod
    def fit(cls, score: np.ndarray, target: np.ndarray) -> Calibrator:
        score = np.asarray(score, dtype=float)
        target = np.asarray(target, dtype=float)
        keep = np.isfinite(score) & np.isfinite(target)
        score, target = score[keep], target[keep]
        if len(score) < MIN_CALIBRATION_ROWS:
            raise DataError(f"calibration needs at least {MIN_CALIBRATION_ROWS} scored rows "
                            f"with a target, got {len(score)}")
        if not np.isin(target, (0.0, 1.0)).all():
            raise DataError("calibration needs a 0/1 target (binary classification)")
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(score, target)
        return cls(x=[float(v) for v in isotonic.X_thresholds_],
                   y=[float(v) for v in isotonic.y_thresholds_])

    def as_dict(self) -> dict[str, list[float]]:
        return {"x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Calibrator:
        return cls(x=list(data["x"]), y=list(data["y"]))

    def __call__(self, score: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(score, dtype=float), self.x, self.y)


def expected_errors(calibrator: Calibrator, score: np.ndarray,
                    predicted: np.ndarray) -> np.ndarray:
    """Per row, the calibrated probability that the prediction is wrong."""
    p = calibrator(score)
    return np.where(np.asarray(predicted) == 1, 1.0 - p, p)


def estimate_performance(calibrator: Calibrator, score: np.ndarray,
                         predicted: np.ndarray) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1 and ROC AUC of a window; {} when empty."""
    score = np.asarray(score, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    keep = np.isfinite(score) & np.isfinite(predicted)
    score, predicted = score[keep], predicted[keep]
    if not len(score):
        return {}
    p = calibrator(score)
    positive = predicted == 1
    tp, fp = float(p[positive].sum()), float((1 - p[positive]).sum())
    fn, tn = float(p[~positive].sum()), float((1 - p[~positive]).sum())
    n = len(p)
    figures = {
        "accuracy": (tp + tn) / n,
        "precision": tp / (tp + fp) if tp + fp > 0 else 0.0,
        "recall": tp / (tp + fn) if tp + fn > 0 else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0,
    }
    weight_positive, weight_negative = p.sum(), (1 - p).sum()
    if weight_positive > 0 and weight_negative > 0 and len(np.unique(score)) > 1:
        figures["roc_auc"] = float(roc_auc_score(
            np.r_[np.ones(n), np.zeros(n)], np.r_[score, score],
            sample_weight=np.r_[p, 1 - p]))
    else:
        figures["roc_auc"] = math.nan
    return figures
