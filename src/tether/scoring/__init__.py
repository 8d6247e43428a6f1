"""The one vocabulary of model quality: each metric's task, direction, range, formulas
(from labeled rows, running counts or score histograms) and when it is undefined.

One concept per module: `base` (what a metric is), `counts` (what metrics are computed
from), `binary`, `multiclass`, `regression` (the metrics), `catalog` (the table and
`evaluate`). Modelled on river's `metrics/base.py` (`bigger_is_better`, one class per
metric), computed in batches with sklearn.metrics.

The re-exports below are resolved on first use (PEP 562): `Task` alone (`tasks`) does
not import numpy, pandas or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.lazy import exports

if TYPE_CHECKING:
    from tether.scoring.base import Direction, Metric, Scores, Source, Undefined
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
    from tether.scoring.tasks import Task

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

_HOME = {
    "DEFAULT_PRIMARY": "catalog",
    "METRICS": "catalog",
    "Confusion": "counts",
    "ConfusionMatrix": "counts",
    "Direction": "base",
    "ErrorSums": "counts",
    "Metric": "base",
    "Scores": "base",
    "Source": "base",
    "Task": "tasks",
    "Undefined": "base",
    "attempt": "catalog",
    "evaluate": "catalog",
    "metric": "catalog",
    "metrics_of": "catalog",
    "names_of": "catalog",
}


__getattr__, __dir__ = exports(__name__, _HOME)
