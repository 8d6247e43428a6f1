"""What a window of logged predictions holds beside its features, and the model's
scores read back from it.

A window (`Store.prediction_window`) has one row per prediction: `id`, `ts`,
`model_version`, `route`, `prediction`, `score`, `latency_ms`, `model_cpu_ms` and
`batch_rows` (the CPU time and size of the model call that answered it, NaN where
unknown), `error`, `label` (a classifier's prediction and label: a number class of a
multiclass model as itself, any other class as its index in `classes_`,
`tether.classes`); for a multiclass classifier, one column per class probability,
`proba:0` ... `proba:{k-1}` in the model's `classes_` order; then the features, each
under its own name unless that name is one of the window's (a credit model's `score`, a
`label`, an `id`): such a feature is `feature:score` in the window, and
`window_features` gives every feature back under the name the model knows.

>>> import pandas as pd
>>> frame = pd.DataFrame({"score": [None, None], "proba:0": [0.9, 0.2],
...                       "proba:1": [0.1, 0.8], "x": [1.0, 2.0]})
>>> model_scores(frame).tolist()
[[0.9, 0.1], [0.2, 0.8]]
>>> feature_columns(frame)
['x']
>>> window_column("score"), window_column("age")
('feature:score', 'age')
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "FEATURE_PREFIX",
    "PROBA_PREFIX",
    "WINDOW_COLUMNS",
    "feature_columns",
    "model_scores",
    "proba_column",
    "probability_columns",
    "window_column",
    "window_features",
]

PROBA_PREFIX = "proba:"
FEATURE_PREFIX = "feature:"
WINDOW_COLUMNS = frozenset({"id", "ts", "model_version", "route", "prediction", "score",
                            "latency_ms", "model_cpu_ms", "batch_rows", "error",
                            "label"})


def window_column(feature: object) -> object:
    """The column `feature` takes in a window: its own name, or `feature:` + its name
    when that would be read as one of the window's own columns (or as a feature so
    escaped)."""
    name = str(feature)
    if feature in WINDOW_COLUMNS or name.startswith((PROBA_PREFIX, FEATURE_PREFIX)):
        return FEATURE_PREFIX + name
    return feature


def proba_column(index: int) -> str:
    return f"{PROBA_PREFIX}{index}"


def probability_columns(frame: pd.DataFrame) -> list[str]:
    """The class probability columns of a window, in class order."""
    found = [c for c in frame.columns if isinstance(c, str) and c.startswith(PROBA_PREFIX)]
    return sorted(found, key=lambda c: int(c[len(PROBA_PREFIX):]))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of a window that hold features, as the window names them."""
    return [c for c in frame.columns
            if c not in WINDOW_COLUMNS and not (isinstance(c, str)
                                                and c.startswith(PROBA_PREFIX))]


def window_features(frame: pd.DataFrame) -> pd.DataFrame:
    """A window's features under the names the model knows (`window_column` undone).

    >>> window = pd.DataFrame({"score": [0.9], "feature:score": [710], "age": [40]})
    >>> window_features(window).columns.tolist()
    ['score', 'age']
    """
    columns = feature_columns(frame)
    return frame[columns].rename(columns={
        c: c[len(FEATURE_PREFIX):] for c in columns
        if isinstance(c, str) and c.startswith(FEATURE_PREFIX)})


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
