"""Replay monitoring over historical data in chunks, as it would have run live.

Per chunk: realized metrics where the target is present, label-free estimates from the
probability column (calibrated on the reference), drift per feature and the share
drifted; across the whole run, the change detectors' alarms with the analysis row at
which each fired. The result is a plain dict with a stable, documented layout
(`docs/monitoring.md`, format "tether.backtest/1").

>>> from tether.example.loans import generate
>>> import numpy as np
>>> reference = generate(3000, seed=1)
>>> analysis = generate(4000, seed=2, shift=0.8)
>>> result = backtest(reference, analysis, chunk_size=2000, target="default")
>>> [chunk["drift"]["drifted"] for chunk in result["chunks"]]
[True, True]
>>> result["chunks"][0]["realized"], result["format"]
({}, 'tether.backtest/1')
>>> labeled = generate(400, seed=3)
>>> labeled["proba"] = 0.9 * labeled["default"]   # perfect scores...
>>> labeled.loc[200:, "default"] = 0              # ...and a chunk with no positive label
>>> chunk = backtest(reference, labeled, chunk_size=200, target="default",
...                  proba="proba")["chunks"][1]
>>> chunk["realized"]["recall"], chunk["undefined"]["realized"]["recall"]
(None, 'no positive labels (recall is 0/0)')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tether.classes import ClassCodes
from tether.errors import DataError
from tether.monitoring.detectors import BernoulliCUSUM, DriftDetector, PageHinkley
from tether.monitoring.drift import MIN_ROWS, detect_drift
from tether.monitoring.estimation import (
    ESTIMATED_METRICS,
    Calibrator,
    estimate_performance,
    expected_errors,
)
from tether.monitoring.profile import build_profile
from tether.scoring import Scores, evaluate

__all__ = ["FORMAT", "backtest"]

FORMAT = "tether.backtest/1"
Predictor = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]


def _task(target: pd.Series) -> str:
    values = pd.to_numeric(target, errors="coerce").dropna()
    if len(values) and values.isin([0, 1]).all():
        return "binary_classification"
    return "regression"


def _binary_codes(classes: Sequence[Any] | None, frames: Sequence[pd.DataFrame],
                  columns: Sequence[str | None]) -> ClassCodes | None:
    """The two classes of a binary model whose labels are not 0/1 ("yes"/"no", -1/1):
    the model's own (`classes`, positive second), else the target's two values sorted as
    sklearn's `classes_` are; None for numeric targets without `classes`."""
    if classes is not None:
        return ClassCodes(classes, multiclass=False) if len(classes) == 2 else None
    found: set[Any] = set()
    text = False
    for frame in frames:
        for name in columns:
            if name is not None and name in frame.columns:
                present = frame[name].dropna()
                text = text or not pd.api.types.is_numeric_dtype(present)
                found.update(present.tolist())
    if not text:
        return None
    if len(found) != 2:
        raise DataError(f"the target has {len(found)} distinct values that are not all "
                        "numbers; a backtest takes a binary target (two classes, such as "
                        "yes/no) or a numeric one")
    return ClassCodes(sorted(found, key=str), multiclass=False)


def _column(frame: pd.DataFrame, name: str | None, what: str, file: str,
            codes: ClassCodes | None = None) -> pd.Series | None:
    if name is None or name not in frame.columns:
        return None
    if codes is not None:  # class labels: 1.0 is the positive (second) class
        values = pd.Series(codes.encode(frame[name].to_numpy()), index=frame.index)
        unknown = values.isna() & frame[name].notna()
        if unknown.any():
            raise DataError(f"{file}: {what} column {name!r} holds "
                            f"{frame[name][unknown].iloc[0]!r}, which is not one of the "
                            f"classes {codes.classes}")
        return values
    values = pd.to_numeric(frame[name], errors="coerce")
    if values.isna().sum() > frame[name].isna().sum():
        raise DataError(f"{file}: {what} column {name!r} has non-numeric values")
    return values


def _figures(scores: Scores, chunk: dict[str, Any], section: str) -> None:
    """Values under `section` (None where undefined), reasons under `undefined`."""
    chunk[section] = dict(scores)
    if scores.reasons:
        chunk["undefined"][section] = dict(scores.reasons)


def backtest(reference: pd.DataFrame, analysis: pd.DataFrame, *, chunk_size: int = 1000,
             target: str | None = None, proba: str | None = None, pred: str | None = None,
             predictor: Predictor | None = None, alpha: float = 0.05,
             share_threshold: float = 0.5, psi_threshold: float = 0.2,
             min_rows: int = MIN_ROWS, classes: Sequence[Any] | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Monitoring replayed over `analysis` in chunks of `chunk_size` rows.

    `target`, `proba` and `pred` name columns (in either frame); `predictor(frame) ->
    (predictions, positive-class scores or None)` fills the missing ones from a model.
    `classes`: a binary model's two classes (its `classes_`; the probability is the
    second's), for labels that are not 0/1; without, text labels ("yes"/"no") are
    taken in sorted order, as sklearn orders them. Raises DataError.
    """
    if chunk_size < 1:
        raise DataError(f"--chunk-size must be at least 1, got {chunk_size}")
    if reference.empty:
        raise DataError("the reference data is empty")
    if analysis.empty:
        raise DataError("the analysis data is empty")
    for name, role in ((target, "target"), (proba, "probability"), (pred, "prediction")):
        if name is not None and name not in reference.columns and name not in analysis.columns:
            raise DataError(f"{role} column {name!r} is in neither file")
    special = {c for c in (target, proba, pred) if c is not None}
    features = [str(c) for c in reference.columns if c not in special]
    if not features:
        raise DataError("the reference data has no feature columns")
    missing = [c for c in features if c not in analysis.columns]
    if len(missing) == len(features):
        raise DataError("the analysis data has none of the reference's feature columns "
                        f"({', '.join(features[:5])}{', ...' if len(features) > 5 else ''})")

    codes = _binary_codes(classes, (reference, analysis), (target, pred))

    def scored(frame: pd.DataFrame, file: str) -> tuple[pd.Series | None, pd.Series | None]:
        scores = _column(frame, proba, "probability", file)
        predictions = _column(frame, pred, "prediction", file, codes)
        if predictor is not None and (predictions is None or scores is None):
            try:
                made, made_scores = predictor(frame[[c for c in features if c in frame]])
            except Exception as exc:
                raise DataError(f"{file}: the model cannot predict it ({type(exc).__name__}: "
                                f"{exc})") from exc
            predictions = predictions if predictions is not None else pd.Series(
                codes.encode(made) if codes is not None else np.asarray(made, dtype=float),
                index=frame.index)
            if scores is None and made_scores is not None:
                scores = pd.Series(np.asarray(made_scores, dtype=float), index=frame.index)
        if predictions is None and scores is not None:
            predictions = (scores >= 0.5).astype(float).where(scores.notna())
        return predictions, scores

    ref_pred, ref_score = scored(reference, "reference")
    ana_pred, ana_score = scored(analysis, "analysis")
    ref_target = _column(reference, target, "target", "reference", codes)
    ana_target = _column(analysis, target, "target", "analysis", codes)
    known = ref_target if ref_target is not None else ana_target
    task = _task(known) if known is not None else "unknown"

    calibrator = None
    uncalibrated: str | None = None  # why there can be no label-free estimate
    if task == "binary_classification" and ref_target is not None and ref_score is not None:
        try:
            calibrator = Calibrator.fit(ref_score.to_numpy(), ref_target.to_numpy())
        except DataError as exc:
            uncalibrated = f"the reference cannot calibrate the scores ({exc})"
    distribution = ref_score if ref_score is not None else ref_pred
    profile = build_profile(reference, features=features, prediction=distribution)
    current_distribution = ana_score if ref_score is not None else ana_pred

    detectors: dict[str, DriftDetector] = {}
    if ana_target is not None and ana_pred is not None and task != "unknown":
        detectors["error"] = (PageHinkley(mode="up") if task == "regression"
                              else BernoulliCUSUM())
    if calibrator is not None and ana_score is not None and ana_pred is not None:
        detectors["estimate"] = BernoulliCUSUM()

    chunks = []
    alarms: list[dict[str, Any]] = []
    total = math.ceil(len(analysis) / chunk_size)
    for index in range(total):
        start, end = index * chunk_size, min((index + 1) * chunk_size, len(analysis))
        rows = analysis.iloc[start:end]
        chunk: dict[str, Any] = {"index": index, "start_row": start, "end_row": end,
                                 "rows": end - start, "labels": 0, "realized": {},
                                 "estimated": {}, "undefined": {}}
        predicted = ana_pred.iloc[start:end] if ana_pred is not None else None
        scores = ana_score.iloc[start:end] if ana_score is not None else None
        if ana_target is not None and predicted is not None:
            truth = ana_target.iloc[start:end]
            labeled = truth.notna() & predicted.notna()
            chunk["labels"] = int(labeled.sum())
            if labeled.any():
                _figures(evaluate(
                    task, truth[labeled].to_numpy(), predicted[labeled].to_numpy(),
                    scores[labeled].to_numpy() if scores is not None
                    and scores[labeled].notna().all() and task != "regression" else None),
                    chunk, "realized")
        if calibrator is not None and scores is not None and predicted is not None:
            _figures(estimate_performance(calibrator, scores.to_numpy(), predicted.to_numpy()),
                     chunk, "estimated")
        elif uncalibrated is not None and scores is not None:
            _figures(Scores(dict.fromkeys(ESTIMATED_METRICS),
                            dict.fromkeys(ESTIMATED_METRICS, uncalibrated)), chunk, "estimated")
        report = detect_drift(profile, rows, alpha=alpha, share_threshold=share_threshold,
                              thresholds={"psi": psi_threshold}, min_rows=min_rows,
                              prediction=current_distribution.iloc[start:end]
                              if current_distribution is not None else None)
        chunk["drift"] = {
            "enough_data": report.enough_data, "share_drifted": report.share_drifted,
            "drifted": report.drifted, "prediction_drift": _nan_none(report.prediction_drift),
            "reason": report.reason,
            "features": {f.name: {"method": f.method, "score": _nan_none(f.score),
                                  "p_value": _nan_none(f.p_value),
                                  "p_adjusted": _nan_none(f.p_adjusted),
                                  "threshold": f.threshold, "drifted": f.drifted,
                                  "missing_reference": f.missing_reference,
                                  "missing_share": f.missing_share,
                                  "missing_drifted": f.missing_drifted,
                                  "reason": f.reason} for f in report.features},
        }
        chunk["alarms"] = []
        for stream, detector in detectors.items():
            for row in _feed(stream, detector, task, start, predicted, scores, calibrator,
                             ana_target.iloc[start:end] if ana_target is not None else None):
                chunk["alarms"].append({"stream": stream, "row": row})
                alarms.append({"stream": stream, "row": row, "chunk": index})
        chunks.append(chunk)
        if progress is not None:
            progress(index + 1, total)
    return {
        "format": FORMAT, "task": task, "reference_rows": len(reference),
        "analysis_rows": len(analysis), "chunk_size": chunk_size,
        "columns": {"features": features, "target": target, "proba": proba, "pred": pred,
                    "missing_in_analysis": missing},
        "settings": {"alpha": alpha, "share_threshold": share_threshold,
                     "psi_threshold": psi_threshold, "min_rows": min_rows,
                     "detectors": {k: repr(v) for k, v in detectors.items()}},
        "chunks": chunks, "alarms": alarms,
        "summary": {"chunks": len(chunks),
                    "drifted_chunks": sum(bool(c["drift"]["drifted"]) for c in chunks),
                    "alarms": {s: sum(a["stream"] == s for a in alarms) for s in detectors}},
    }


def _nan_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _feed(stream: str, detector: DriftDetector, task: str, start: int,
          predicted: pd.Series | None, scores: pd.Series | None,
          calibrator: Calibrator | None, truth: pd.Series | None) -> list[int]:
    """Feed one chunk to a detector; the analysis rows (0-based) where it fired."""
    assert predicted is not None
    if stream == "error":
        assert truth is not None
        keep = (truth.notna() & predicted.notna()).to_numpy()
        t, p = truth.to_numpy(dtype=float)[keep], predicted.to_numpy(dtype=float)[keep]
        values = np.abs(t - p) if task == "regression" else (t != p).astype(float)
    else:
        assert scores is not None and calibrator is not None
        keep = (scores.notna() & predicted.notna()).to_numpy()
        values = expected_errors(calibrator, scores.to_numpy(dtype=float)[keep],
                                 predicted.to_numpy(dtype=float)[keep])
    rows = np.flatnonzero(keep) + start
    return [int(row) for row, value in zip(rows, values.tolist(), strict=True)
            if detector.update(value).drift_detected]
