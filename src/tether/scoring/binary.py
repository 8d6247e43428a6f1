"""Binary classification metrics; class 1 is the positive class.

The confusion-matrix metrics are one formula on `Confusion` counts, whether the counts
come from labeled rows, from the store's per-bucket totals or from calibrated
probabilities (CBPE), so each is undefined in exactly one way:

| metric | undefined when |
|---|---|
| accuracy | no labeled rows |
| precision | no predicted positives (0/0) |
| recall | no positive labels (0/0) |
| f1 | no positive labels and no predicted positives (0/0) |
| roc_auc | no scores, or the labels hold one class only |
| log_loss | no scores, or no labeled rows |

(sklearn's `zero_division=np.nan` agrees; its default reports 0.0 for 0/0.)

>>> import numpy as np
>>> y, pred = np.zeros(5), np.array([0, 0, 1, 0, 0])
>>> precision, recall = Precision(), Recall()
>>> precision.from_rows(y, pred)
0.0
>>> recall.from_rows(y, pred)
Traceback (most recent call last):
...
tether.scoring.base.Undefined: no positive labels (recall is 0/0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from tether.scoring.base import Metric, Source, Task, Undefined
from tether.scoring.counts import Confusion

__all__ = ["F1", "Accuracy", "LogLoss", "Precision", "Recall", "RocAuc", "ratio"]

PROBABILITY_CLIP = 1e-15  # as sklearn's log_loss clips


def ratio(numerator: float, denominator: float, reason: str) -> float:
    """numerator / denominator, or `Undefined(reason)` when the denominator is 0."""
    if not denominator > 0:
        raise Undefined(reason)
    return float(numerator / denominator)


def _scores(y_score: np.ndarray | None, rows: int) -> np.ndarray:
    if y_score is None:
        raise Undefined("needs predicted probabilities, and there are none")
    score = np.asarray(y_score, dtype=float)
    if score.ndim != 1 or len(score) != rows:
        raise ValueError(f"expected {rows} positive-class probabilities, got shape "
                         f"{score.shape}")
    return score


class _ConfusionMetric(Metric):
    task: ClassVar[Task] = Task.BINARY
    lowest: ClassVar[float] = 0.0
    highest: ClassVar[float] = 1.0
    sources: ClassVar[frozenset[Source]] = frozenset({Source.ROWS, Source.COUNTS})
    estimable: ClassVar[bool] = True

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        return self.from_counts(Confusion.of_labels(y_true, y_pred))


class Accuracy(_ConfusionMetric):
    name = "accuracy"
    description = "share of rows predicted right"

    def from_counts(self, counts: Confusion) -> float:
        return ratio(counts.tp + counts.tn, counts.n, "no labeled rows")


class Precision(_ConfusionMetric):
    name = "precision"
    description = "share of predicted positives that are positive"

    def from_counts(self, counts: Confusion) -> float:
        return ratio(counts.tp, counts.tp + counts.fp,
                     "no predicted positives (precision is 0/0)")

    def support(self, counts: Confusion) -> float:
        return counts.tp + counts.fp


class Recall(_ConfusionMetric):
    name = "recall"
    description = "share of positives predicted positive"

    def from_counts(self, counts: Confusion) -> float:
        return ratio(counts.tp, counts.tp + counts.fn, "no positive labels (recall is 0/0)")

    def support(self, counts: Confusion) -> float:
        return counts.tp + counts.fn


class F1(_ConfusionMetric):
    name = "f1"
    description = "harmonic mean of precision and recall, 2TP / (2TP + FP + FN)"

    def from_counts(self, counts: Confusion) -> float:
        return ratio(2 * counts.tp, 2 * counts.tp + counts.fp + counts.fn,
                     "no positive labels and no predicted positives (f1 is 0/0)")


class RocAuc(Metric):
    name = "roc_auc"
    task = Task.BINARY
    lowest = 0.0
    highest = 1.0
    needs_scores = True
    sources = frozenset({Source.ROWS, Source.HISTOGRAM})
    estimable = True
    description = "probability that a positive scores above a negative"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        from sklearn import metrics as skm  # on first use: every process reads this table

        truth = np.asarray(y_true, dtype=float)
        score = _scores(y_score, len(truth))
        positives = int(np.count_nonzero(truth == 1))
        if positives == 0 or positives == len(truth):
            only = "no labeled rows" if not len(truth) else (
                f"the labels hold one class only (all {1 if positives else 0})")
            raise Undefined(only)
        return float(skm.roc_auc_score(truth == 1, score))

    def from_histogram(self, positives: Mapping[int, float],
                       negatives: Mapping[int, float]) -> float:
        """P(score of a positive > score of a negative), same-bin pairs counted half
        (within the share of same-bin pairs of the exact value: with 100 bins, a few
        thousandths on real scores).

        >>> round(RocAuc().from_histogram({90: 8, 70: 2, 30: 1}, {70: 1, 30: 5, 10: 4}), 4)
        0.9591
        """
        total_pos, total_neg = sum(positives.values()), sum(negatives.values())
        if total_pos <= 0 or total_neg <= 0:
            raise Undefined("the labels hold one class only" if total_pos + total_neg > 0
                            else "no labeled rows")
        below = 0.0  # negatives in lower bins
        wins = 0.0
        for index in sorted(set(positives) | set(negatives)):
            pos, neg = positives.get(index, 0.0), negatives.get(index, 0.0)
            wins += pos * (below + neg / 2)
            below += neg
        return float(wins / (total_pos * total_neg))


class LogLoss(Metric):
    name = "log_loss"
    task = Task.BINARY
    bigger_is_better = False
    lowest = 0.0
    needs_scores = True
    description = "mean cross-entropy of the predicted probabilities"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        """Mean binary cross-entropy, probabilities clipped as sklearn clips them, in
        numpy: sklearn's input checks cost about 4 ms a call, and the dashboard makes
        hundreds of calls per chart.

        >>> from sklearn import metrics as skm
        >>> y, s = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.99])
        >>> round(LogLoss().from_rows(y, y, s), 6) == round(skm.log_loss(y, s), 6)
        True
        """
        truth = np.asarray(y_true, dtype=float)
        if not len(truth):
            raise Undefined("no labeled rows")
        p = np.clip(_scores(y_score, len(truth)), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
        return float(-np.where(truth == 1, np.log(p), np.log(1 - p)).mean())
