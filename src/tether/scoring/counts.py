"""The running counts metrics are computed from, whoever holds them: labeled rows counted
here, the store's per-bucket totals, or expected counts from calibrated probabilities
(CBPE). Counts are floats so that expected counts fit.

Counting is plain numpy rather than `sklearn.metrics.confusion_matrix`: the canary's
bootstrap counts hundreds of resamples, where sklearn's input checks cost more than the
counting.

>>> import numpy as np
>>> Confusion.of_labels(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
Confusion(tp=1.0, fp=1.0, fn=1.0, tn=1.0)
>>> Confusion.expected(np.array([0.9, 0.2]), np.array([1, 0]))
Confusion(tp=0.9, fp=0.09999999999999998, fn=0.2, tn=0.8)
>>> m = ConfusionMatrix.of_labels(np.array(["a", "b", "b"]), np.array(["a", "a", "b"]))
>>> m.classes, m.matrix.tolist()
(['a', 'b'], [[1.0, 0.0], [1.0, 1.0]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Confusion", "ConfusionMatrix", "ErrorSums"]


@dataclass(frozen=True)
class Confusion:
    """Binary confusion counts; class 1 is the positive class."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.fn + self.tn

    @classmethod
    def of_labels(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Confusion:
        truth = np.asarray(y_true, dtype=float) == 1
        predicted = np.asarray(y_pred, dtype=float) == 1
        tp = float(np.count_nonzero(truth & predicted))
        fp = float(np.count_nonzero(~truth & predicted))
        fn = float(np.count_nonzero(truth & ~predicted))
        return cls(tp=tp, fp=fp, fn=fn, tn=float(len(truth)) - tp - fp - fn)

    @classmethod
    def expected(cls, probability: np.ndarray, predicted: np.ndarray) -> Confusion:
        """Expected counts when each row is positive with its calibrated `probability`
        (CBPE, as NannyML estimates them)."""
        p = np.asarray(probability, dtype=float)
        positive = np.asarray(predicted, dtype=float) == 1
        return cls(tp=float(p[positive].sum()), fp=float((1 - p[positive]).sum()),
                   fn=float(p[~positive].sum()), tn=float((1 - p[~positive]).sum()))


@dataclass(frozen=True)
class ConfusionMatrix:
    """Multiclass confusion counts: `matrix[i, j]` rows of true class `classes[i]`
    predicted as `classes[j]`."""

    classes: list[Any]
    matrix: np.ndarray

    @property
    def n(self) -> float:
        return float(self.matrix.sum())

    @classmethod
    def of_labels(cls, y_true: np.ndarray, y_pred: np.ndarray,
                  classes: Sequence[Any] | None = None) -> ConfusionMatrix:
        """Count labels; `classes` (e.g. the model's `classes_`) come first, any other
        label seen in the rows is added after them, so none is dropped."""
        import pandas as pd  # only here: reading a policy imports the metrics, not pandas

        truth, predicted = np.asarray(y_true), np.asarray(y_pred)
        known = list(classes) if classes is not None else []
        seen = set(known)
        extra = _ordered(v for v in pd.unique(np.concatenate([truth, predicted]))
                         if v not in seen)
        labels = known + extra
        k = len(labels)
        codes = pd.Categorical(truth, categories=labels).codes.astype(np.int64)
        guessed = pd.Categorical(predicted, categories=labels).codes.astype(np.int64)
        counts = np.bincount(codes * k + guessed, minlength=k * k).astype(float)
        return cls(classes=labels, matrix=counts.reshape(k, k))


def _ordered(values: Any) -> list[Any]:
    found = [v.item() if isinstance(v, np.generic) else v for v in values]
    try:
        return sorted(found)
    except TypeError:  # labels of mixed types
        return sorted(found, key=repr)


@dataclass(frozen=True)
class ErrorSums:
    """Regression residual totals of `n` labeled rows."""

    n: float = 0.0
    sum_abs_error: float = 0.0
    sum_squared_error: float = 0.0

    @classmethod
    def of_labels(cls, y_true: np.ndarray, y_pred: np.ndarray) -> ErrorSums:
        errors = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
        return cls(n=float(len(errors)), sum_abs_error=float(np.abs(errors).sum()),
                   sum_squared_error=float((errors ** 2).sum()))
