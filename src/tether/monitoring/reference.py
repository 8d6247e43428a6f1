"""The reference a version is monitored against: its training profile, built at training
time from the training rows and the scored holdout, saved as `reference/profile.json`.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> train = pd.DataFrame({"x": rng.normal(size=500), "y": rng.integers(0, 2, 500)})
>>> score = rng.random(200)
>>> holdout = pd.DataFrame({"y": (rng.random(200) < score).astype(int),
...                         "_prediction": (score >= 0.5).astype(int), "_score": score})
>>> profile = reference_profile(train, ["x"], holdout, target="y",
...                             task="binary_classification")
>>> sorted(profile.features), profile.prediction_column, profile.calibration is not None
(['x'], '_score', True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tether.classes import ClassCodes, plain_classes
from tether.errors import DataError
from tether.monitoring.estimation import Calibrator
from tether.monitoring.multiclass_estimation import ClassCalibrators
from tether.monitoring.profile import Profile, build_profile

__all__ = ["CALIBRATION_ERROR", "CLASSES", "PREDICTION", "PROBA", "PROFILE_FILE", "SCORE",
           "holdout_probabilities", "reference_profile"]

PROFILE_FILE = "profile.json"
CALIBRATION_ERROR = "calibration_error"  # profile.meta key: why there is no calibration
PREDICTION = "_prediction"
SCORE = "_score"
CLASSES = "classes"  # profile.meta key: a classifier's classes, in its probability order
PROBA = "_proba_"  # holdout columns _proba_0 ... _proba_{k-1}: class probabilities


def holdout_probabilities(holdout: pd.DataFrame) -> np.ndarray | None:
    """The class probabilities (n, k) a multiclass holdout was scored with, or None."""
    columns = sorted((c for c in holdout.columns if str(c).startswith(PROBA)),
                     key=lambda c: int(str(c)[len(PROBA):]))
    return holdout[columns].to_numpy(dtype=float) if columns else None


def reference_profile(train: pd.DataFrame, features: list[str], holdout: pd.DataFrame | None,
                      *, target: str, task: str, prediction: str = PREDICTION,
                      score: str = SCORE, classes: list[object] | None = None) -> Profile:
    """Profile of `features` over the training rows, with the holdout's score distribution
    (binary), predicted-class distribution (multiclass) or prediction distribution
    (regression), the calibration (binary: one curve; multiclass: one curve per class of
    `classes`, from the holdout's `_proba_*` columns) and the holdout error rate."""
    if task == "multiclass_classification":
        return _multiclass_profile(train, features, holdout, target=target,
                                   prediction=prediction, classes=classes)
    scores = predictions = labels = None
    binary = task == "binary_classification"
    # a binary classifier's labels as the store keeps them: 1.0 is the positive class
    # (classes[1]), whatever the labels are
    codes = ClassCodes(classes, multiclass=False) if binary and classes else None
    if holdout is not None and len(holdout):
        if target in holdout:
            labels = (codes.encode(holdout[target].to_numpy()) if codes is not None
                      else holdout[target].to_numpy(dtype=float))
        if score in holdout and holdout[score].notna().any():
            scores = holdout[score]
        if prediction in holdout:
            predictions = holdout[prediction]
    calibration = None
    error_rate = math.nan
    meta: dict[str, Any] = {"target": target, "task": task}
    if codes is not None:
        meta[CLASSES] = codes.classes
    if binary and labels is not None:
        if scores is not None:
            try:
                calibration = Calibrator.fit(scores.to_numpy(dtype=float), labels).as_dict()
            except DataError as exc:
                meta[CALIBRATION_ERROR] = str(exc)
        else:
            meta[CALIBRATION_ERROR] = "the model gives no scores (no predict_proba)"
        if predictions is not None:
            predicted = (codes.encode(predictions.to_numpy()) if codes is not None
                         else predictions.to_numpy(dtype=float))
            error_rate = float(np.mean(predicted != labels))
    distribution = scores if scores is not None else predictions
    return build_profile(train, features=features, prediction=distribution,
                         calibration=calibration, error_rate=error_rate, meta=meta)


def _multiclass_profile(train: pd.DataFrame, features: list[str],
                        holdout: pd.DataFrame | None, *, target: str, prediction: str,
                        classes: list[object] | None) -> Profile:
    meta: dict[str, Any] = {"target": target, "task": "multiclass_classification"}
    if classes is not None:
        meta[CLASSES] = plain_classes(classes)
    calibration = None
    error_rate = math.nan
    predictions = None
    if holdout is not None and len(holdout) and target in holdout:
        proba = holdout_probabilities(holdout)
        if prediction in holdout:
            predictions = holdout[prediction]
            error_rate = float(np.mean(predictions.astype(str).to_numpy()
                                       != holdout[target].astype(str).to_numpy()))
        if proba is None or classes is None:
            meta[CALIBRATION_ERROR] = "the model gives no class probabilities (no predict_proba)"
        else:
            try:
                calibration = ClassCalibrators.fit(proba, holdout[target].to_numpy(),
                                                   classes).as_dict()
            except DataError as exc:
                meta[CALIBRATION_ERROR] = str(exc)
    else:
        meta[CALIBRATION_ERROR] = "no labeled holdout"
    return build_profile(train, features=features, prediction=predictions,
                         class_calibration=calibration, error_rate=error_rate, meta=meta,
                         discrete_prediction=True)
