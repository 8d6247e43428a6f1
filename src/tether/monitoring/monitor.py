"""The live picture of one served version (and route), computed from the store.

`Monitor.snapshot(version, route)` reads the most recent window of predictions joined to
their labels and returns a `Snapshot`: traffic and errors, live metrics with confidence
intervals, label-free estimates, drift against the version's training profile and the
state of the change detectors. Small windows get `enough_data[...] = False` and a reason
in `reasons`, never a verdict.

The profile and calibrator of a version are loaded from the registry once. Change
detectors are fed incrementally: each (version, route, stream) keeps the timestamp of the
last prediction it saw, so a snapshot feeds only rows newer than that. Their state lives
in memory; a restarted process starts them again on the current window. A label that
arrives after later predictions were already fed reaches the live metrics but not the
detector.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tether.classes import ClassCodes
from tether.config import MonitoringPolicy
from tether.errors import DataError, ReferenceMissing, TetherError, VersionNotFound
from tether.monitoring.detectors import BernoulliCUSUM, DriftDetector, PageHinkley
from tether.monitoring.drift import DriftReport, detect_drift
from tether.monitoring.estimation import Calibrator, estimate_performance, expected_errors
from tether.monitoring.live import MetricEstimate, live_metrics
from tether.monitoring.multiclass_estimation import (
    ClassCalibrators,
    estimate_multiclass,
    expected_class_errors,
)
from tether.monitoring.profile import Profile
from tether.monitoring.reference import (
    CALIBRATION_ERROR,
    CLASSES,
    PROFILE_FILE,
    SCORE,
)
from tether.outputs import model_scores, proba_column, window_features
from tether.project import Project
from tether.scoring import Scores, Task

__all__ = ["STREAMS", "Monitor", "Snapshot", "window_drift"]

STREAMS = ("error", "estimate")
# Rows fed to a detector in one snapshot at most (after a long pause, the newest ones).
MAX_FEED_ROWS = 200_000
# A version without a reference is asked again this often (`tether adopt` may record one).
MISSING_RECHECK_S = 60.0


@dataclass(frozen=True)
class Snapshot:
    """What one version (on one route, or all routes) is doing over one window."""

    model: str
    version: int
    route: str | None
    ts: float
    window_start: float | None
    window_end: float | None
    n_predictions: int
    n_labels: int
    label_coverage: float | None
    error_rate: float | None
    latency_p99_ms: float | None
    live: dict[str, MetricEstimate]
    estimated: Scores
    drift: DriftReport | None
    change: dict[str, bool]
    enough_data: dict[str, bool]
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = {
            "model": self.model, "version": self.version, "route": self.route, "ts": self.ts,
            "window_start": self.window_start, "window_end": self.window_end,
            "n_predictions": self.n_predictions, "n_labels": self.n_labels,
            "label_coverage": self.label_coverage, "error_rate": self.error_rate,
            "latency_p99_ms": self.latency_p99_ms,
            "live": {k: v.as_dict() for k, v in self.live.items()},
            "estimated": dict(self.estimated),
            "undefined": {"live": {k: v.reason for k, v in self.live.items()
                                   if v.reason is not None},
                          "estimated": dict(self.estimated.reasons)},
            "drift": self.drift.as_dict() if self.drift is not None else None,
            "change": dict(self.change), "enough_data": dict(self.enough_data),
            "reasons": dict(self.reasons),
        }
        return _json_safe(data)


def _json_safe(value: Any) -> Any:
    """NaN and inf become None, so the dict is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def window_drift(profile: Profile, frame: pd.DataFrame, policy: MonitoringPolicy) -> DriftReport:
    """Drift of a window read from the store (its feature columns, and the score or
    prediction of the rows that did not fail) against `profile`, with the policy's alpha,
    drift share threshold and PSI threshold."""
    failed = frame["error"].astype(bool).to_numpy()
    valid = frame[~failed & frame["prediction"].notna().to_numpy()]
    features = window_features(frame)
    prediction_column = "score" if profile.prediction_column == SCORE else "prediction"
    predicted = valid[prediction_column]
    classes = profile.meta.get(CLASSES)
    if prediction_column == "prediction" and classes:
        # the store keeps class indices; the profile counts the classes themselves
        codes = ClassCodes(classes, multiclass=profile.meta.get("task") == Task.MULTICLASS)
        predicted = pd.Series(codes.decode(predicted.to_numpy()),
                              index=predicted.index, name=predicted.name)
    return detect_drift(profile, features, alpha=policy.drift_alpha,
                        share_threshold=policy.drift_share_threshold,
                        thresholds={"psi": policy.psi_threshold},
                        prediction=predicted)


@dataclass
class _Stream:
    detector: DriftDetector
    cursor: float | None = None
    last_alarm: float | None = None
    alarms: int = 0
    fed: int = 0


@dataclass(frozen=True)
class _Reference:
    """What a version is monitored against; `profile` None (and `missing` saying why)
    for a version registered outside tether and not adopted."""

    profile: Profile | None
    calibrator: Calibrator | None
    class_calibrators: ClassCalibrators | None = None
    missing: str | None = None
    loaded_at: float = 0.0

    @property
    def classes(self) -> list[Any] | None:
        """The model's classes in its probability columns' order (multiclass)."""
        classes = self.profile.meta.get(CLASSES) if self.profile is not None else None
        if classes is None and self.class_calibrators is not None:
            classes = self.class_calibrators.classes
        return None if classes is None else list(classes)

    @property
    def codes(self) -> list[float] | None:
        """The classes as the store keeps labels and predictions (`tether.classes`)."""
        classes = self.classes
        if classes is None:
            return None
        multiclass = (self.class_calibrators is not None if self.profile is None
                      else self.profile.meta.get("task") == Task.MULTICLASS)
        return ClassCodes(classes, multiclass=multiclass).codes

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None or self.class_calibrators is not None


class Monitor:
    """Snapshots of served versions; one per process, shared by controller and exporter."""

    def __init__(self, project: Project, clock: Callable[[], float] = time.time) -> None:
        self.project = project
        self.clock = clock
        self._references: dict[int, _Reference] = {}
        self._streams: dict[tuple[int, str | None, str], _Stream] = {}
        self._lock = threading.RLock()

    @property
    def task(self) -> str:
        return self.project.policy.model.task.value

    # reference -----------------------------------------------------------------------

    def profile(self, version: int) -> Profile:
        """The training profile of `version`; DataError (ReferenceMissing when the
        version has none) otherwise."""
        reference = self._reference(version)
        if reference.profile is None:
            raise ReferenceMissing(reference.missing or f"version {version}: no profile")
        return reference.profile

    def class_codes(self, version: int) -> list[float] | None:
        """The codes the store keeps for the version's classes, in its probability
        columns' order (`tether.classes`); None when its profile records no classes."""
        return self._reference(version).codes

    def _reference(self, version: int) -> _Reference:
        with self._lock:
            cached = self._references.get(version)
        if cached is not None and (cached.profile is not None
                                   or time.time() - cached.loaded_at < MISSING_RECHECK_S):
            return cached
        try:
            profile = self._load_profile(version)
        except ReferenceMissing as exc:
            # a version registered by plain MLflow: monitored without drift until adopted
            reference = _Reference(None, None, missing=str(exc), loaded_at=time.time())
            with self._lock:
                self._references[version] = reference
            return reference
        calibrator = Calibrator.from_dict(profile.calibration) if profile.calibration else None
        per_class = (ClassCalibrators.from_dict(profile.class_calibration)
                     if profile.class_calibration else None)
        reference = _Reference(profile, calibrator, per_class)
        with self._lock:
            self._references[version] = reference
        return reference

    def _load_profile(self, version: int) -> Profile:
        try:
            path = self.project.registry.reference_artifact(version, PROFILE_FILE)
            return Profile.from_dict(json.loads(path.read_text()))
        except (ReferenceMissing, VersionNotFound):
            raise
        except (TetherError, OSError, ValueError) as exc:
            raise DataError(f"version {version}: no readable {PROFILE_FILE} to monitor "
                            f"against ({exc})") from exc

    # snapshot ------------------------------------------------------------------------

    def snapshot(self, version: int, route: str | None = None, *, since: float | None = None,
                 window: int | None = None) -> Snapshot:
        """The live picture of `version` on `route` (None: every route).

        Default window: the last `monitoring.window_size` predictions, limited to the last
        `monitoring.window_seconds` when that is set. `since` alone: every prediction
        since then; `window` alone: the last `window` predictions.
        """
        policy = self.project.policy.monitoring
        now = self.clock()
        if since is None and window is None:
            window = policy.window_size
            if policy.window_seconds is not None:
                since = now - policy.window_seconds
        if window is not None and window < 1:
            raise DataError(f"window must be at least 1 prediction, got {window}")
        frame = self.project.store.prediction_window(
            self.project.model_name, version=version, route=route, since=since, limit=window)
        reference = self._reference(version)
        with self._lock:
            change = self._feed(version, route, frame, reference)
        return self._assemble(version, route, now, frame, reference, change)

    def _assemble(self, version: int, route: str | None, now: float, frame: pd.DataFrame,
                  reference: _Reference, change: dict[str, bool]) -> Snapshot:
        policy = self.project.policy.monitoring
        n = len(frame)
        reasons: dict[str, str] = {}
        enough = {"predictions": n > 0, "live": False, "estimated": False, "drift": False}
        base: dict[str, Any] = {
            "model": self.project.model_name, "version": version, "route": route, "ts": now,
            "change": change, "enough_data": enough, "reasons": reasons}
        if n == 0:
            for key in ("predictions", "live", "estimated", "drift"):
                reasons[key] = "not enough data: no predictions in the window"
            return Snapshot(**base, window_start=None, window_end=None, n_predictions=0,
                            n_labels=0, label_coverage=None, error_rate=None,
                            latency_p99_ms=None, live={}, estimated=Scores(), drift=None)
        failed = frame["error"].astype(bool).to_numpy()
        valid = frame[~failed & frame["prediction"].notna().to_numpy()]
        latency = frame["latency_ms"].dropna().to_numpy(dtype=float)
        labeled = valid[valid["label"].notna()]
        live: dict[str, MetricEstimate] = {}
        if len(labeled) >= policy.min_labels:
            enough["live"] = True
            scores = model_scores(labeled)
            if scores is not None and (scores.ndim == 2) != (self.task == Task.MULTICLASS):
                scores = None
            classes = reference.codes
            if scores is not None and scores.ndim == 2 and (
                    classes is None or len(classes) != scores.shape[1]):
                scores = None  # probabilities whose classes are unknown rank nothing
            live = live_metrics(self.task, labeled["label"].to_numpy(dtype=float),
                                labeled["prediction"].to_numpy(dtype=float), scores,
                                classes=classes)
        else:
            reasons["live"] = (f"not enough data: {len(labeled)} labeled prediction(s), "
                               f"need {policy.min_labels} (monitoring.min_labels)")
        estimated = self._estimate(valid, reference, reasons)
        enough["estimated"] = bool(estimated)
        drift = None
        if reference.profile is None:
            reasons["drift"] = f"no drift: {reference.missing}"
        else:
            drift = window_drift(reference.profile, frame, policy)
            enough["drift"] = drift.enough_data
            if not drift.enough_data and drift.reason:
                reasons["drift"] = drift.reason
        return Snapshot(
            **base, window_start=float(frame["ts"].iloc[0]),
            window_end=float(frame["ts"].iloc[-1]), n_predictions=n, n_labels=len(labeled),
            label_coverage=len(labeled) / n, error_rate=float(failed.mean()),
            latency_p99_ms=float(np.percentile(latency, 99)) if len(latency) else None,
            live=live, estimated=estimated, drift=drift)

    def _estimate(self, valid: pd.DataFrame, reference: _Reference,
                  reasons: dict[str, str]) -> Scores:
        if self.task == Task.MULTICLASS and reference.class_calibrators is not None:
            return self._estimate_multiclass(valid, reference.class_calibrators, reasons)
        if reference.profile is None:
            reasons["estimated"] = f"no estimate: {reference.missing}"
            return Scores()
        if self.task != Task.BINARY or reference.calibrator is None:
            why = reference.profile.meta.get(CALIBRATION_ERROR)
            reasons["estimated"] = (f"no estimate: the reference cannot calibrate ({why})"
                                    if why else
                                    "no estimate: needs a classifier with scores")
            return Scores()
        scored = valid[valid["score"].notna()]
        minimum = self.project.policy.monitoring.min_labels
        if len(scored) < minimum:
            reasons["estimated"] = (f"not enough data: {len(scored)} scored prediction(s), "
                                    f"need {minimum} (monitoring.min_labels)")
            return Scores()
        return estimate_performance(reference.calibrator, scored["score"].to_numpy(),
                                    scored["prediction"].to_numpy())

    def _estimate_multiclass(self, valid: pd.DataFrame, calibrators: ClassCalibrators,
                             reasons: dict[str, str]) -> Scores:
        proba = _class_probabilities(valid, len(calibrators.classes))
        minimum = self.project.policy.monitoring.min_labels
        if len(proba) < minimum:
            reasons["estimated"] = (f"not enough data: {len(proba)} prediction(s) with class "
                                    f"probabilities, need {minimum} (monitoring.min_labels)")
            return Scores()
        return estimate_multiclass(calibrators, proba)

    # change detection ---------------------------------------------------------------

    def _new_detector(self, stream: str) -> DriftDetector:
        if stream == "error" and self.task == "regression":
            return PageHinkley(mode="up")
        return BernoulliCUSUM()

    def _feed(self, version: int, route: str | None, frame: pd.DataFrame,
              reference: _Reference) -> dict[str, bool]:
        """Feed each stream the rows newer than its cursor; True if it fired in the window."""
        streams = ["error"]
        if reference.calibrated:
            streams.append("estimate")
        states = {}
        for stream in streams:
            key = (version, route, stream)
            if key not in self._streams:
                self._streams[key] = _Stream(self._new_detector(stream))
            states[stream] = self._streams[key]
        cursors = [s.cursor for s in states.values()]
        known = [c for c in cursors if c is not None]
        if frame.empty or len(known) < len(cursors) or min(known) >= float(frame["ts"].iloc[0]):
            rows = frame
        else:
            oldest = min(known)
            rows = self.project.store.prediction_window(
                self.project.model_name, version=version, route=route, since=oldest,
                limit=MAX_FEED_ROWS)
        for stream, state in states.items():
            fresh = rows if state.cursor is None or rows.empty else rows[rows["ts"] > state.cursor]
            fresh = fresh[~fresh["error"].astype(bool) & fresh["prediction"].notna()] \
                if not fresh.empty else fresh
            values, stamps = self._stream_values(stream, fresh, reference)
            state.fed += len(values)
            for value, stamp in zip(values, stamps, strict=True):
                if state.detector.update(value).drift_detected:
                    state.last_alarm = stamp
                    state.alarms += 1
            if len(stamps):
                state.cursor = float(stamps[-1])
        start = float(frame["ts"].iloc[0]) if not frame.empty else math.inf
        fired = {}
        for stream in STREAMS:
            alarm = states[stream].last_alarm if stream in states else None
            fired[stream] = alarm is not None and alarm >= start
        return fired

    def _stream_values(self, stream: str, rows: pd.DataFrame,
                       reference: _Reference) -> tuple[list[float], list[float]]:
        if rows.empty:
            return [], []
        if stream == "error":
            labeled = rows[rows["label"].notna()]
            truth = labeled["label"].to_numpy(dtype=float)
            predicted = labeled["prediction"].to_numpy(dtype=float)
            values = (np.abs(truth - predicted) if self.task == "regression"
                      else (truth != predicted).astype(float))
            return values.tolist(), labeled["ts"].astype(float).tolist()
        if reference.class_calibrators is not None:
            k = len(reference.class_calibrators.classes)
            rows = rows[_has_probabilities(rows, k)]
            values = expected_class_errors(reference.class_calibrators,
                                           _class_probabilities(rows, k))
            return values.tolist(), rows["ts"].astype(float).tolist()
        scored = rows[rows["score"].notna()]
        assert reference.calibrator is not None
        values = expected_errors(reference.calibrator, scored["score"].to_numpy(dtype=float),
                                 scored["prediction"].to_numpy(dtype=float))
        return values.tolist(), scored["ts"].astype(float).tolist()


def _has_probabilities(rows: pd.DataFrame, k: int) -> np.ndarray:
    columns = [proba_column(j) for j in range(k)]
    if not set(columns) <= set(rows.columns):
        return np.zeros(len(rows), dtype=bool)
    return np.isfinite(rows[columns].to_numpy(dtype=float)).all(axis=1)


def _class_probabilities(rows: pd.DataFrame, k: int) -> np.ndarray:
    """The (n, k) class probabilities of the rows that have all k."""
    keep = _has_probabilities(rows, k)
    if not keep.any():
        return np.empty((0, k))
    return rows.loc[keep, [proba_column(j) for j in range(k)]].to_numpy(dtype=float)
