"""Performance without labels for multiclass classifiers: confidence-based performance
estimation (CBPE) as NannyML does it for more than two classes (NannyML,
`nannyml.performance_estimation.confidence_based`; Kivimäki et al., "Confidence-based
performance estimation", 2022).

One calibrator per class is fitted one-vs-rest on the reference holdout (isotonic
regression of the class's probability against "the row is of this class"). On a live
window each row's k calibrated probabilities are normalised to sum to 1 (a row whose
calibrated probabilities are all 0 gets 1/k each), so row i is of class c with
probability P[i, c]. The expected confusion matrix is then
`M[c, j] = sum of P[i, c] over the rows predicted j`, and accuracy, precision, recall and
F1 (macro and weighted averages) come from it through the metrics' own `from_counts`:
per class this is NannyML's TP = sum(p_c | predicted c), FP = sum(1 - p_c | predicted c),
FN = sum(p_c | not predicted c). One-vs-rest ROC AUC is, per class, the weighted AUC of
the model's own probability for the class with every row counted once as a positive
(weight P[i, c]) and once as a negative (weight 1 - P[i, c]), averaged over the classes.
Like the binary estimate, this holds under covariate shift, not under concept drift.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> def sample(n, shift=0.0):   # three classes whose true probabilities are known
...     logits = rng.normal(size=(n, 3)) * 2 + [shift, 0, 0]
...     proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
...     truth = np.array([rng.choice(3, p=p) for p in proba])
...     return proba, truth
>>> proba, truth = sample(5000)
>>> calibrators = ClassCalibrators.fit(proba, truth, classes=[0, 1, 2])
>>> new_proba, new_truth = sample(3000, shift=1.5)          # covariate shift
>>> estimate = estimate_multiclass(calibrators, new_proba)
>>> from sklearn.metrics import accuracy_score, f1_score
>>> realized = (accuracy_score(new_truth, new_proba.argmax(axis=1)),
...             f1_score(new_truth, new_proba.argmax(axis=1), average="macro"))
>>> abs(estimate["accuracy"] - realized[0]) < 0.03, abs(estimate["f1_macro"] - realized[1]) < 0.03
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from tether.errors import DataError
from tether.monitoring.estimation import MIN_CALIBRATION_ROWS, Calibrator
from tether.scoring import Metric, Scores, Task, Undefined, attempt, metrics_of
from tether.scoring.counts import ConfusionMatrix

__all__ = ["MULTICLASS_ESTIMATED", "ClassCalibrators", "estimate_multiclass",
           "expected_class_errors"]

ESTIMABLE: list[Metric] = [m for m in metrics_of(Task.MULTICLASS) if m.estimable]
MULTICLASS_ESTIMATED = tuple(m.name for m in ESTIMABLE)


@dataclass(frozen=True)
class ClassCalibrators:
    """One isotonic calibrator per class, in the model's `classes_` order."""

    classes: list[Any]
    curves: list[Calibrator]

    @classmethod
    def fit(cls, proba: np.ndarray, target: np.ndarray,
            classes: Sequence[Any]) -> ClassCalibrators:
        """Fit on the reference holdout: `proba` (n, k) in `classes` order, `target` (n,)
        the true labels. Raises DataError with fewer than 50 rows or a class no holdout
        row has (its calibrator would know nothing)."""
        proba = np.asarray(proba, dtype=float)
        truth = np.asarray(target)
        labels = list(classes)
        if proba.ndim != 2 or proba.shape[1] != len(labels):
            raise DataError(f"calibration: {proba.shape} probabilities for "
                            f"{len(labels)} classes")
        if len(truth) < MIN_CALIBRATION_ROWS:
            raise DataError(f"calibration needs at least {MIN_CALIBRATION_ROWS} scored rows "
                            f"with a target, got {len(truth)}")
        absent = [c for c in labels if not np.any(_equal(truth, c))]
        if absent:
            raise DataError(f"calibration: class(es) {absent} have no holdout row")
        curves = [Calibrator.fit(proba[:, j], _equal(truth, c).astype(float))
                  for j, c in enumerate(labels)]
        return cls(classes=labels, curves=curves)

    def as_dict(self) -> dict[str, Any]:
        return {"classes": _plain(self.classes), "curves": [c.as_dict() for c in self.curves]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassCalibrators:
        return cls(classes=list(data["classes"]),
                   curves=[Calibrator.from_dict(c) for c in data["curves"]])

    def __call__(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities (n, k), each row summing to 1."""
        proba = np.asarray(proba, dtype=float)
        calibrated = np.column_stack([curve(proba[:, j]) for j, curve in
                                      enumerate(self.curves)])
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        return np.divide(calibrated, total, out=uniform, where=total > 0)


def _equal(values: np.ndarray, label: Any) -> np.ndarray:
    """Labels compared as numbers when both are numbers (1 and 1.0 agree)."""
    try:
        return np.asarray(values, dtype=float) == float(label)
    except (TypeError, ValueError):
        return np.asarray(values).astype(str) == str(label)


def _plain(values: Sequence[Any]) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _rows(proba: np.ndarray, k: int) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != k:
        raise DataError(f"expected (n, {k}) class probabilities, got shape {proba.shape}")
    return proba[np.isfinite(proba).all(axis=1)]


def expected_class_errors(calibrators: ClassCalibrators, proba: np.ndarray) -> np.ndarray:
    """Per row, the calibrated probability that the predicted class (the most probable
    one, as the server predicts) is wrong: 1 - P[i, predicted]."""
    proba = _rows(proba, len(calibrators.classes))
    calibrated = calibrators(proba)
    predicted = proba.argmax(axis=1)
    return 1.0 - calibrated[np.arange(len(proba)), predicted]


def _roc_auc_ovr(proba: np.ndarray, calibrated: np.ndarray) -> float:
    n, k = proba.shape
    per_class = []
    for c in range(k):
        p = calibrated[:, c]
        if p.sum() <= 0 or (1 - p).sum() <= 0:
            raise Undefined(f"the calibrated probabilities say class {c} never or always")
        if len(np.unique(proba[:, c])) < 2:
            raise Undefined("every probability of a class is the same, so nothing is ranked")
        per_class.append(roc_auc_score(np.r_[np.ones(n), np.zeros(n)],
                                       np.r_[proba[:, c], proba[:, c]],
                                       sample_weight=np.r_[p, 1 - p]))
    return float(np.mean(per_class))


def estimate_multiclass(calibrators: ClassCalibrators, proba: np.ndarray) -> Scores:
    """Expected accuracy, precision, recall and F1 (macro and weighted) and one-vs-rest
    ROC AUC of a window of the model's class probabilities `proba` (n, k) in
    `calibrators.classes` order; rows with a missing probability are left out. Each
    metric is None, with its reason, where the window does not define it."""
    k = len(calibrators.classes)
    proba = _rows(proba, k)
    if not len(proba):
        return Scores(dict.fromkeys(MULTICLASS_ESTIMATED),
                      dict.fromkeys(MULTICLASS_ESTIMATED, "no scored rows"))
    calibrated = calibrators(proba)
    predicted = proba.argmax(axis=1)
    matrix = np.zeros((k, k))
    for j in range(k):  # column j: rows predicted as class j
        matrix[:, j] = calibrated[predicted == j].sum(axis=0)
    counts = ConfusionMatrix(classes=list(calibrators.classes), matrix=matrix)
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for chosen in ESTIMABLE:
        if chosen.name == "roc_auc_ovr":
            value, reason = attempt(lambda: _roc_auc_ovr(proba, calibrated))
        else:
            value, reason = attempt(lambda m=chosen: m.from_counts(counts))  # type: ignore[misc]
        values[chosen.name] = value
        if reason is not None:
            reasons[chosen.name] = reason
    return Scores(values, reasons)
