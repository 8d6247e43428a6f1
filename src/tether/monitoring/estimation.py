"""Performance without labels for binary classifiers: confidence-based estimation (CBPE).

A calibrator (isotonic regression, sklearn) is fitted on the reference holdout's score
against its target. On a live window, each row's calibrated probability p is the
chance that the true class is 1, so the expected confusion matrix is
TP = sum(p | predicted 1), FP = sum(1 - p | predicted 1), FN = sum(p | predicted 0),
TN = sum(1 - p | predicted 0), which gives expected accuracy, precision, recall and F1.
ROC AUC is estimated as sklearn's weighted AUC with every row counted once as a positive
(weight p) and once as a negative (weight 1 - p). This holds while the model stays
calibrated on the new data, i.e. under covariate shift, not under concept drift.

The same estimates also come from score histograms (`estimate_from_bins`), which is all a
database has to sum per time bucket: each bin's rows count as positives with probability
equal to their mean score (the scores are taken as calibrated), and ROC AUC from labeled
histograms (`roc_auc_from_bins`) counts pairs inside one bin as ties.

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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from tether.errors import DataError

__all__ = [
    "ESTIMATED_METRICS",
    "SCORE_BINS",
    "Calibrator",
    "estimate_from_bins",
    "estimate_performance",
    "expected_errors",
    "roc_auc_from_bins",
]

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
MIN_CALIBRATION_ROWS = 50
SCORE_BINS = 100  # default histogram: bin i holds scores in [i / 100, (i + 1) / 100)


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


def roc_auc_from_bins(positives: Mapping[int, float], negatives: Mapping[int, float],
                      ) -> float | None:
    """P(score of a positive > score of a negative) from per-bin counts of positives and
    negatives, same-bin pairs counted half; None without both classes.

    Within the share of same-bin pairs of the exact value: with 100 bins, a few
    thousandths on real scores.

    >>> round(roc_auc_from_bins({90: 8, 70: 2, 30: 1}, {70: 1, 30: 5, 10: 4}), 4)
    0.9591
    >>> roc_auc_from_bins({90: 3}, {}) is None
    True
    """
    total_pos, total_neg = sum(positives.values()), sum(negatives.values())
    if total_pos <= 0 or total_neg <= 0:
        return None
    below = 0.0  # negatives in lower bins
    wins = 0.0
    for index in sorted(set(positives) | set(negatives)):
        pos, neg = positives.get(index, 0.0), negatives.get(index, 0.0)
        wins += pos * (below + neg / 2)
        below += neg
    return float(wins / (total_pos * total_neg))


def estimate_from_bins(counts: Mapping[int, int], score_sums: Mapping[int, float], *,
                       bins: int = SCORE_BINS) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1 (threshold 0.5) and ROC AUC from a score
    histogram of `bins` (even) equal bins of [0, 1]: rows and score sum per bin; {} when empty.

    >>> counts, sums = {90: 10, 20: 10}, {90: 9.0, 20: 2.0}
    >>> {k: round(v, 3) for k, v in estimate_from_bins(counts, sums).items()}
    {'accuracy': 0.85, 'precision': 0.9, 'recall': 0.818, 'f1': 0.857, 'roc_auc': 0.854}
    """
    if bins < 2 or bins % 2:
        raise ValueError("bins must be even, so that a bin starts at score 0.5.")
    total = sum(counts.values())
    if total == 0:
        return {}
    threshold_bin = bins // 2  # the first bin of scores >= 0.5
    tp = fp = fn = tn = 0.0
    expected_pos: dict[int, float] = {}
    expected_neg: dict[int, float] = {}
    for index, count in counts.items():
        pos = score_sums.get(index, 0.0)
        neg = count - pos
        expected_pos[index], expected_neg[index] = pos, neg
        if index >= threshold_bin:
            tp, fp = tp + pos, fp + neg
        else:
            fn, tn = fn + pos, tn + neg
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    found = {
        "accuracy": (tp + tn) / total,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    auc = roc_auc_from_bins(expected_pos, expected_neg)
    if auc is not None:
        found["roc_auc"] = auc
    return {k: float(v) for k, v in found.items()}
