"""What a window of logged predictions holds beside its features, and the model's
scores read back from it.

A window (`Store.prediction_window`) has one row per prediction: `id`, `ts`,
`model_version`, `route`, `prediction`, `score`, `latency_ms`, `model_cpu_ms` and
`batch_rows` (the CPU time and size of the model call that answered it, NaN where
unknown), `error`, `label` (a classifier's prediction and label: a number class of a
multiclass model as itself, any other class as its index in `classes_`,
`tether.classes`); for a multiclass classifier, one column per class probability,
`proba:0` ... `proba:{k-1}` in the model's `classes_` order; then the features.

>>> import pandas as pd
>>> frame = pd.DataFrame({"score": [None, None], "proba:0": [0.9, 0.2],
...                       "proba:1": [0.1, 0.8], "x": [1.0, 2.0]})
>>> model_scores(frame).tolist()
[[0.9, 0.1], [0.2, 0.8]]
>>> feature_columns(frame)
['x']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "PROBA_PREFIX",
    "WINDOW_COLUMNS",
    "feature_columns",
    "model_scores",
    "proba_column",
    "probability_columns",
]

PROBA_PREFIX = "proba:"
WINDOW_COLUMNS = frozenset({"id", "ts", "model_version", "route", "prediction", "score",
                            "latency_ms", "model_cpu_ms", "batch_rows", "error",
                            "label"})


def proba_column(index: int) -> str:
    return f"{PROBA_PREFIX}{index}"


def probability_columns(frame: pd.DataFrame) -> list[str]:
    """The class probability columns of a window, in class order."""
    found = [c for c in frame.columns if isinstance(c, str) and c.startswith(PROBA_PREFIX)]
    return sorted(found, key=lambda c: int(c[len(PROBA_PREFIX):]))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns
            if c not in WINDOW_COLUMNS and not (isinstance(c, str)
                                                and c.startswith(PROBA_PREFIX))]


def model_scores(frame: pd.DataFrame) -> np.ndarray | None:
    """The model's scores of every row: class probabilities (n, k) of a multiclass
    classifier, positive-class scores (n,) of a binary one; None unless every row has
    them (a failed row, a model without `predict_proba`)."""
    columns = probability_columns(frame)
    if columns:
        proba = frame[columns].to_numpy(dtype=float)
        return proba if len(proba) and np.isfinite(proba).all() else None
    if "score" not in frame:
        return None
    scores = frame["score"].to_numpy(dtype=float)
    return scores if len(scores) and np.isfinite(scores).all() else None
