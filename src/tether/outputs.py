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

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tether.errors import DataError

__all__ = [
    "PROBA_PREFIX",
    "WINDOW_COLUMNS",
    "check_feature_names",
    "feature_columns",
    "model_scores",
    "proba_column",
    "probability_columns",
    "reserved_names",
]

PROBA_PREFIX = "proba:"
WINDOW_COLUMNS = frozenset({"id", "ts", "model_version", "route", "prediction", "score",
                            "latency_ms", "model_cpu_ms", "batch_rows", "error",
                            "label"})


def reserved_names(names: Iterable[object]) -> list[str]:
    """The names among `names` that prediction windows use for their own columns (a
    model feature named `score` or `label` would be read as the model's score or the
    label, and dropped from drift checks), in their order.

    >>> reserved_names(["age", "score", "proba:0", "income"])
    ['score', 'proba:0']
    """
    return [str(name) for name in names
            if name in WINDOW_COLUMNS or str(name).startswith(PROBA_PREFIX)]


def check_feature_names(names: Iterable[object], where: str) -> None:
    """Raise `DataError` when a feature takes a name windows reserve (`reserved_names`)."""
    clashes = reserved_names(names)
    if clashes:
        raise DataError(
            f"{where}: feature column(s) {', '.join(map(repr, clashes))} take names tether's "
            f"prediction log uses for its own columns ({', '.join(sorted(WINDOW_COLUMNS))} "
            f"and {PROBA_PREFIX}N); rename them in the data and in what the model is fed")


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
