"""The one vocabulary of model quality: each metric's task, direction, range, formulas
(from labeled rows, running counts or score histograms) and when it is undefined.

One concept per module: `base` (what a metric is), `counts` (what metrics are computed
from), `binary`, `multiclass`, `regression` (the metrics), `catalog` (the table and
`evaluate`). Modelled on river's `metrics/base.py` (`bigger_is_better`, one class per
metric), computed in batches with sklearn.metrics.
"""

from __future__ import annotations

from tether.scoring.base import Direction, Metric, Scores, Source, Task, Undefined
from tether.scoring.catalog import (
    DEFAULT_PRIMARY,
    METRICS,
    attempt,
    evaluate,
    metric,
    metrics_of,
    names_of,
)
from tether.scoring.counts import Confusion, ConfusionMatrix, ErrorSums

__all__ = [
    "DEFAULT_PRIMARY",
    "METRICS",
    "Confusion",
    "ConfusionMatrix",
    "Direction",
    "ErrorSums",
    "Metric",
    "Scores",
    "Source",
    "Task",
    "Undefined",
    "attempt",
    "evaluate",
    "metric",
    "metrics_of",
    "names_of",
]
