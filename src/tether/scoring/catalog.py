"""The one table of metrics: every task's metrics by name, and `evaluate`, which computes
a task's metrics on labeled rows with the reason for each one the rows do not define.

The gate, the canary analysis, live monitoring, the label-free estimates, the dashboard
and the policy checks all look metrics up here, so a name means one formula, one
direction and one rule for "undefined" everywhere.

>>> import numpy as np
>>> scores = evaluate("binary_classification", np.array([0, 1, 1, 0]),
...                   np.array([0, 1, 0, 0]), np.array([0.1, 0.9, 0.4, 0.2]))
>>> {k: round(v, 3) for k, v in scores.defined().items()}
{'accuracy': 0.75, 'precision': 1.0, 'recall': 0.5, 'f1': 0.667, 'roc_auc': 1.0, 'log_loss': 0.338}
>>> one_class = evaluate("binary_classification", np.zeros(4), np.array([0, 1, 0, 0]))
>>> one_class["recall"], one_class.reasons["recall"]
(None, 'no positive labels (recall is 0/0)')
>>> names_of("regression"), metric("regression", "r2").direction.value
(['rmse', 'mae', 'r2'], 'maximize')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tether.scoring import binary, multiclass, regression
from tether.scoring.base import Metric, Scores, Task, Undefined

__all__ = ["DEFAULT_PRIMARY", "METRICS", "attempt", "evaluate", "metric", "metrics_of",
           "names_of"]

METRICS: dict[Task, dict[str, Metric]] = {
    task: {m.name: m for m in found} for task, found in (
        (Task.BINARY, [binary.Accuracy(), binary.Precision(), binary.Recall(), binary.F1(),
                       binary.RocAuc(), binary.LogLoss()]),
        (Task.MULTICLASS, [multiclass.Accuracy(),
                           *(kind(average) for average in multiclass.AVERAGES
                             for kind in (multiclass.PrecisionScore, multiclass.RecallScore,
                                          multiclass.F1Score)),
                           multiclass.RocAucOvr(), multiclass.LogLoss()]),
        (Task.REGRESSION, [regression.RMSE(), regression.MAE(), regression.R2()]),
    )
}

# What `tether init` and the dashboard start from when the policy names no metric.
DEFAULT_PRIMARY = {Task.BINARY: "roc_auc", Task.MULTICLASS: "f1_macro",
                   Task.REGRESSION: "rmse"}


def metrics_of(task: Task | str) -> list[Metric]:
    return list(METRICS[Task(task)].values())


def names_of(task: Task | str) -> list[str]:
    return list(METRICS[Task(task)])


def metric(task: Task | str, name: str) -> Metric:
    """The metric `name` of `task`; ValueError naming the allowed ones otherwise."""
    try:
        return METRICS[Task(task)][name]
    except KeyError:
        raise ValueError(f"{name!r} is not a metric of {Task(task).value}; allowed: "
                         f"{', '.join(names_of(task))}") from None


def attempt(compute: Callable[[], float]) -> tuple[float | None, str | None]:
    """(value, None), or (None, reason) when the data does not define the metric."""
    try:
        value = compute()
    except Undefined as exc:
        return None, str(exc)
    if not math.isfinite(value):
        return None, "not a finite number on these rows"
    return float(value), None


def evaluate(task: Task | str, y_true: np.ndarray, y_pred: np.ndarray,
             y_score: np.ndarray | None = None, *, classes: Sequence[Any] | None = None,
             names: Sequence[str] | None = None) -> Scores:
    """Every metric of `task` (or those `names`) on labeled rows: a value, or None and
    the reason. `y_score`: positive-class probabilities (n,) for binary tasks, class
    probabilities (n, k) in `classes` order for multiclass ones, None without them."""
    chosen = metrics_of(task) if names is None else [metric(task, n) for n in names]
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for m in chosen:
        value, reason = attempt(lambda m=m: m.from_rows(y_true, y_pred, y_score,  # type: ignore[misc]
                                                        classes=classes))
        values[m.name] = value
        if reason is not None:
            reasons[m.name] = reason
    return Scores(values, reasons)
