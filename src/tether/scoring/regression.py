"""Regression metrics, in the target's units (R2 has none).

| metric | undefined when |
|---|---|
| rmse, mae | no labeled rows |
| r2 | fewer than 2 labeled rows, or labels that do not vary (R2 divides by their variance) |

sklearn's `r2_score` reports 0.0 (or 1.0) for constant labels unless `force_finite=False`;
here that case is undefined.

>>> import numpy as np
>>> round(RMSE().from_rows(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 2.0])), 4)
1.1547
>>> R2().from_rows(np.ones(3), np.array([1.0, 2.0, 3.0]))
Traceback (most recent call last):
...
tether.scoring.base.Undefined: the labels do not vary (R2 divides by their variance)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tether.scoring.base import Metric, Source, Task, Undefined
from tether.scoring.counts import ErrorSums

__all__ = ["MAE", "R2", "RMSE"]


class RMSE(Metric):
    name = "rmse"
    task = Task.REGRESSION
    bigger_is_better = False
    lowest = 0.0
    sources = frozenset({Source.ROWS, Source.COUNTS})
    description = "root mean squared error"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        from sklearn import metrics as skm  # on first use: every process reads this table

        if not len(y_true):
            raise Undefined("no labeled rows")
        return float(math.sqrt(skm.mean_squared_error(y_true, y_pred)))

    def from_counts(self, counts: ErrorSums) -> float:
        if counts.n <= 0:
            raise Undefined("no labeled rows")
        return math.sqrt(counts.sum_squared_error / counts.n)


class MAE(Metric):
    name = "mae"
    task = Task.REGRESSION
    bigger_is_better = False
    lowest = 0.0
    sources = frozenset({Source.ROWS, Source.COUNTS})
    description = "mean absolute error"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        from sklearn import metrics as skm  # on first use: every process reads this table

        if not len(y_true):
            raise Undefined("no labeled rows")
        return float(skm.mean_absolute_error(y_true, y_pred))

    def from_counts(self, counts: ErrorSums) -> float:
        if counts.n <= 0:
            raise Undefined("no labeled rows")
        return counts.sum_abs_error / counts.n


class R2(Metric):
    name = "r2"
    task = Task.REGRESSION
    highest = 1.0
    description = "coefficient of determination: 1 - SSE / variance of the labels"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        from sklearn import metrics as skm  # on first use: every process reads this table

        truth = np.asarray(y_true, dtype=float)
        if len(truth) < 2:
            raise Undefined(f"{len(truth)} labeled row(s); R2 needs at least 2")
        if np.all(truth == truth[0]):
            raise Undefined("the labels do not vary (R2 divides by their variance)")
        return float(skm.r2_score(truth, np.asarray(y_pred, dtype=float)))
