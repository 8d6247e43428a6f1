"""Multiclass classification metrics, named as sklearn's scorers are.

Predictions are class labels; probabilities are an (n, k) array whose columns follow
`classes` (the model's `classes_`). Per-class precision, recall and F1 come from one
`ConfusionMatrix`, so labeled rows, stored counts and (later) expected counts share the
formulas. A class whose per-class figure is 0/0 (never predicted, for precision; never
labeled, for recall) is left out of the average, as sklearn does with
`zero_division=np.nan`; the average is undefined when no class defines it.

| metric | undefined when |
|---|---|
| accuracy | no labeled rows |
| precision/recall/f1 _macro, _weighted | no class defines the per-class figure |
| log_loss | no probabilities, no labeled rows, or a label the model has no column for |
| roc_auc_ovr | no probabilities, or a class of the model has no labeled row |

>>> import numpy as np
>>> y = np.array(["a", "a", "b", "c"]); pred = np.array(["a", "b", "b", "b"])
>>> round(F1Score("macro").from_rows(y, pred), 4)
0.3889
>>> Accuracy().from_rows(y, pred)
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from tether.scoring.base import Metric, Source, Task, Undefined
from tether.scoring.binary import ratio
from tether.scoring.counts import ConfusionMatrix

__all__ = ["AVERAGES", "Accuracy", "F1Score", "LogLoss", "PrecisionScore", "RecallScore",
           "RocAucOvr"]

AVERAGES = ("macro", "weighted")


class _MatrixMetric(Metric):
    task: ClassVar[Task] = Task.MULTICLASS
    lowest: ClassVar[float] = 0.0
    highest: ClassVar[float] = 1.0
    sources: ClassVar[frozenset[Source]] = frozenset({Source.ROWS, Source.COUNTS})
    estimable: ClassVar[bool] = True  # from expected counts (multiclass CBPE)

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        return self.from_counts(ConfusionMatrix.of_labels(y_true, y_pred, classes))


class Accuracy(_MatrixMetric):
    name = "accuracy"
    description = "share of rows predicted right"

    def from_counts(self, counts: ConfusionMatrix) -> float:
        return ratio(float(np.trace(counts.matrix)), counts.n, "no labeled rows")


class _Averaged(_MatrixMetric):
    """A per-class figure averaged over classes: `macro` (each class alike) or
    `weighted` (by each class's labeled rows)."""

    figure: ClassVar[str]

    def __init__(self, average: str = "macro") -> None:
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {', '.join(AVERAGES)}.")
        self.average = average

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.figure}_{self.average}"

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"{self.figure} per class, {self.average} average"

    def per_class(self, counts: ConfusionMatrix) -> np.ndarray:
        matrix = counts.matrix
        hits = np.diag(matrix)
        labeled, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
        denominator = {"precision": predicted, "recall": labeled,
                       "f1": labeled + predicted}[self.figure]
        numerator = 2 * hits if self.figure == "f1" else hits
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, numerator / np.where(denominator > 0,
                                                                  denominator, 1), np.nan)

    def from_counts(self, counts: ConfusionMatrix) -> float:
        if counts.n <= 0:
            raise Undefined("no labeled rows")
        values = self.per_class(counts)
        defined = ~np.isnan(values)
        if self.average == "weighted":
            weights = counts.matrix.sum(axis=1)[defined]
            return ratio(float((values[defined] * weights).sum()), float(weights.sum()),
                         f"no labeled class defines {self.figure} (0/0 for every class)")
        if not defined.any():
            raise Undefined(f"no class defines {self.figure} (0/0 for every class)")
        return float(values[defined].mean())


class PrecisionScore(_Averaged):
    figure = "precision"


class RecallScore(_Averaged):
    figure = "recall"


class F1Score(_Averaged):
    figure = "f1"


def _probabilities(y_score: np.ndarray | None, rows: int,
                   classes: Sequence[Any] | None) -> tuple[np.ndarray, list[Any]]:
    if y_score is None:
        raise Undefined("needs predicted probabilities, and there are none")
    proba = np.asarray(y_score, dtype=float)
    if proba.ndim != 2 or len(proba) != rows:
        raise ValueError(f"expected ({rows}, k) class probabilities, got shape {proba.shape}")
    labels = list(classes) if classes is not None else list(range(proba.shape[1]))
    if len(labels) != proba.shape[1]:
        raise ValueError(f"{proba.shape[1]} probability columns for {len(labels)} classes")
    return proba, labels


def _unknown(truth: np.ndarray, labels: list[Any]) -> list[Any]:
    known = set(labels)
    return sorted({v for v in truth.tolist() if v not in known}, key=repr)


class LogLoss(Metric):
    name = "log_loss"
    task = Task.MULTICLASS
    bigger_is_better = False
    lowest = 0.0
    needs_scores = True
    description = "mean cross-entropy of the predicted class probabilities"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        from sklearn import metrics as skm  # on first use: every process reads this table

        truth = np.asarray(y_true)
        if not len(truth):
            raise Undefined("no labeled rows")
        proba, labels = _probabilities(y_score, len(truth), classes)
        unknown = _unknown(truth, labels)
        if unknown:
            raise Undefined(f"label(s) {unknown} are not classes of the model")
        return float(skm.log_loss(truth, proba, labels=labels))


class RocAucOvr(Metric):
    name = "roc_auc_ovr"
    task = Task.MULTICLASS
    lowest = 0.0
    highest = 1.0
    needs_scores = True
    estimable = True
    description = "one-vs-rest ROC AUC, macro average over the classes"

    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        truth = np.asarray(y_true)
        if not len(truth):
            raise Undefined("no labeled rows")
        proba, labels = _probabilities(y_score, len(truth), classes)
        unknown = _unknown(truth, labels)
        if unknown:
            raise Undefined(f"label(s) {unknown} are not classes of the model")
        from sklearn import metrics as skm  # on first use: every process reads this table

        present = set(truth.tolist())
        absent = [c for c in labels if c not in present]
        if absent:
            raise Undefined(f"class(es) {absent} have no labeled row; one-vs-rest ROC AUC "
                            "needs every class")
        if len(labels) == 2:  # sklearn's binary case: the second class is positive
            return float(skm.roc_auc_score(truth == labels[1], proba[:, 1]))
        return float(skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro",
                                       labels=labels))
