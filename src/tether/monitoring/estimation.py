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
equal to their mean score (the scores are taken as calibrated).

The formulas are the metrics' own (`tether.scoring`): expected counts go through the same
`from_counts` as labeled rows, so an estimate is undefined exactly when the metric would
be (e.g. precision with no predicted positives) and is then None, with the reason in
`Scores.reasons`.

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
>>> nothing_predicted = estimate_performance(calibrator, new_score, np.zeros(5000))
>>> nothing_predicted["precision"], nothing_predicted.reasons["precision"]
(None, 'no predicted positives (precision is 0/0)')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from tether.errors import DataError
from tether.scoring import Confusion, Metric, Scores, Source, Task, Undefined, attempt, metrics_of

__all__ = [
    "ESTIMATED_METRICS",
    "SCORE_BINS",
    "Calibrator",
    "estimate_from_bins",
    "estimate_performance",
    "expected_errors",
]

ESTIMABLE: list[Metric] = [m for m in metrics_of(Task.BINARY) if m.estimable]
ESTIMATED_METRICS = tuple(m.name for m in ESTIMABLE)
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


def _estimates(confusion: Confusion, roc_auc: Callable[[], float]) -> Scores:
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for chosen in ESTIMABLE:
        counted = Source.COUNTS in chosen.sources
        value, reason = attempt(partial(chosen.from_counts, confusion) if counted else roc_auc)
        values[chosen.name] = value
        if reason is not None:
            reasons[chosen.name] = reason
    return Scores(values, reasons)


def _weighted_roc_auc(score: np.ndarray, p: np.ndarray) -> float:
    """sklearn's AUC with every row once a positive (weight p), once a negative (1 - p)."""
    if not len(score):
        raise Undefined("no scored rows")
    if p.sum() <= 0 or (1 - p).sum() <= 0:
        raise Undefined("the calibrated probabilities say one class only")
    if len(np.unique(score)) < 2:
        raise Undefined("every score is the same, so nothing is ranked")
    n = len(score)
    return float(roc_auc_score(np.r_[np.ones(n), np.zeros(n)], np.r_[score, score],
                               sample_weight=np.r_[p, 1 - p]))


def estimate_performance(calibrator: Calibrator, score: np.ndarray,
                         predicted: np.ndarray) -> Scores:
    """Expected accuracy, precision, recall, F1 and ROC AUC of a window of scored rows
    (NaN rows ignored); each None, with its reason, where the window does not define it."""
    score = np.asarray(score, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    keep = np.isfinite(score) & np.isfinite(predicted)
    score, predicted = score[keep], predicted[keep]
    if not len(score):
        return Scores(dict.fromkeys(ESTIMATED_METRICS),
                      dict.fromkeys(ESTIMATED_METRICS, "no scored rows"))
    p = calibrator(score)
    return _estimates(Confusion.expected(p, predicted), partial(_weighted_roc_auc, score, p))


def estimate_from_bins(counts: Mapping[int, int], score_sums: Mapping[int, float], *,
                       bins: int = SCORE_BINS) -> Scores:
    """Expected accuracy, precision, recall, F1 (threshold 0.5) and ROC AUC from a score
    histogram of `bins` (even) equal bins of [0, 1]: rows and score sum per bin.

    >>> counts, sums = {90: 10, 20: 10}, {90: 9.0, 20: 2.0}
    >>> {k: round(v, 3) for k, v in estimate_from_bins(counts, sums).items()}
    {'accuracy': 0.85, 'precision': 0.9, 'recall': 0.818, 'f1': 0.857, 'roc_auc': 0.854}
    """
    if bins < 2 or bins % 2:
        raise ValueError("bins must be even, so that a bin starts at score 0.5.")
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
    roc_auc = next(m for m in ESTIMABLE if Source.HISTOGRAM in m.sources)
    return _estimates(Confusion(tp=tp, fp=fp, fn=fn, tn=tn),
                      partial(roc_auc.from_histogram, expected_pos, expected_neg))
