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

import numpy as np
import pandas as pd

from tether.errors import DataError
from tether.monitoring.estimation import Calibrator
from tether.monitoring.profile import Profile, build_profile

__all__ = ["CALIBRATION_ERROR", "PREDICTION", "PROFILE_FILE", "SCORE", "reference_profile"]

PROFILE_FILE = "profile.json"
CALIBRATION_ERROR = "calibration_error"  # profile.meta key: why there is no calibration
PREDICTION = "_prediction"
SCORE = "_score"


def reference_profile(train: pd.DataFrame, features: list[str], holdout: pd.DataFrame | None,
                      *, target: str, task: str, prediction: str = PREDICTION,
                      score: str = SCORE) -> Profile:
    """Profile of `features` over the training rows, with the holdout's score distribution,
    the calibration curve (binary tasks) and the holdout error rate."""
    scores = predictions = labels = None
    if holdout is not None and len(holdout):
        labels = holdout[target].to_numpy(dtype=float) if target in holdout else None
        if score in holdout and holdout[score].notna().any():
            scores = holdout[score]
        if prediction in holdout:
            predictions = holdout[prediction]
    calibration = None
    error_rate = math.nan
    meta: dict[str, str] = {"target": target, "task": task}
    if task == "binary_classification" and labels is not None:
        if scores is not None:
            try:
                calibration = Calibrator.fit(scores.to_numpy(dtype=float), labels).as_dict()
            except DataError as exc:
                meta[CALIBRATION_ERROR] = str(exc)
        else:
            meta[CALIBRATION_ERROR] = "the model gives no scores (no predict_proba)"
        if predictions is not None:
            error_rate = float(np.mean(predictions.to_numpy(dtype=float) != labels))
    distribution = scores if scores is not None else predictions
    return build_profile(train, features=features, prediction=distribution,
                         calibration=calibration, error_rate=error_rate, meta=meta)
