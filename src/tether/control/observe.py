"""What an arm (a version on a route) did, read from the prediction log."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from tether.control.analysis import ArmStats
from tether.errors import TetherError
from tether.project import Project

__all__ = ["MAX_WINDOW_ROWS", "Estimator", "arm_stats"]

MAX_WINDOW_ROWS = 50_000


# Label-free estimates of a version's served rows, None where undefined.
Estimator = Callable[[int, pd.DataFrame], Mapping[str, float | None]]


def arm_stats(project: Project, version: int, route: str, since: float | None,
              until: float | None = None, estimator: Estimator | None = None,
              limit: int = MAX_WINDOW_ROWS) -> ArmStats:
    """Counts, errors, p99 latency and labeled outcomes of one arm since `since`."""
    window = project.store.prediction_window(project.model_name, version=version, route=route,
                                             since=since, until=until, limit=limit,
                                             features=False)
    if window.empty:
        return ArmStats(version=version, route=route, predictions=0)
    errors = window["error"].astype(bool)
    served = window[~errors]
    latency = served["latency_ms"].dropna()
    labeled = served[served["label"].notna()]
    scores = labeled["score"]
    return ArmStats(
        version=version,
        route=route,
        predictions=len(window),
        errors=int(errors.sum()),
        latency_p99_ms=float(np.percentile(latency, 99)) if len(latency) else 0.0,
        latency_p50_ms=float(np.percentile(latency, 50)) if len(latency) else 0.0,
        labels=len(labeled),
        y_true=labeled["label"].to_numpy(dtype=float),
        y_pred=labeled["prediction"].to_numpy(dtype=float),
        y_score=scores.to_numpy(dtype=float) if len(scores) and scores.notna().all() else None,
        estimated=_estimate(estimator, version, served),
    )


def _estimate(estimator: Estimator | None, version: int,
              served: pd.DataFrame) -> Mapping[str, float | None]:
    if estimator is None:
        return {}
    try:
        return estimator(version, served)
    except TetherError:  # no calibration for this version: the labels have to decide
        return {}
