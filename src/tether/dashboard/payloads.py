"""The data behind each chart, as plain dicts: one function per JSON endpoint.

Everything that grows with traffic comes from the running totals the store keeps;
what Python touches here is bounded (buckets x versions, plus fixed-size samples per
bucket for the metrics totals cannot give).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from tether import scoring
from tether.errors import InputError, TetherError
from tether.monitoring.drift import FeatureDrift, Histogram, histogram
from tether.monitoring.estimation import SCORE_BINS, estimate_from_bins
from tether.monitoring.monitor import Monitor, window_drift
from tether.monitoring.multiclass_estimation import ClassCalibrators, estimate_multiclass
from tether.monitoring.reference import CALIBRATION_ERROR
from tether.outputs import model_scores, proba_column
from tether.project import Project
from tether.registry import RegistryState
from tether.scoring import Confusion, ErrorSums, Metric, Source, Task, attempt, names_of
from tether.store import LabelBucket, ScoreBin, TrafficBucket

__all__ = [
    "ANALYSIS_KINDS",
    "MIN_BUCKET_LABELS",
    "TimeRange",
    "drift_payload",
    "events_payload",
    "metrics_of_task",
    "state_payload",
    "timeseries_payload",
]

ANALYSIS_KINDS = ("analysis", "rollout_step", "rollout_started")
SAMPLE_ROWS = 500  # per bucket and version, for metrics the totals cannot give (R2)
MIN_BUCKET_LABELS = 10  # fewer labels in a bucket give no live metric point
MAX_BUCKETS = 500
NICE_BUCKETS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
TARGET_POINTS = 120


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[since, until) cut into buckets of `bucket_seconds`."""

    since: float
    until: float
    bucket_seconds: float

    @classmethod
    def parse(cls, window: str | None, bucket: str | None, now: float | None = None) -> TimeRange:
        """From the query string: `window` seconds back from now, `bucket` seconds wide.

        >>> TimeRange.parse("3600", None, now=7200.0)
        TimeRange(since=3600.0, until=7200.0, bucket_seconds=30)
        >>> TimeRange.parse("60", "0.5")
        Traceback (most recent call last):
        ...
        tether.errors.InputError: bucket: expected seconds >= 1, got '0.5'
        """
        now = time.time() if now is None else now
        window_seconds = _number("window", window, default=3600.0, low=60.0, high=90 * 86400.0)
        if bucket is None or bucket == "":
            width: float = next((b for b in NICE_BUCKETS if window_seconds / b <= TARGET_POINTS),
                                NICE_BUCKETS[-1])
        else:
            width = _number("bucket", bucket, default=60.0, low=1.0, high=86400.0)
        if window_seconds / width > MAX_BUCKETS:
            raise InputError(f"window {window_seconds:g}s / bucket {width:g}s gives "
                             f"{math.ceil(window_seconds / width)} buckets; at most "
                             f"{MAX_BUCKETS}: choose a wider bucket")
        return cls(since=now - window_seconds, until=now, bucket_seconds=width)


def _number(name: str, raw: str | None, *, default: float, low: float, high: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if not low <= value <= high or math.isnan(value):
        raise InputError(f"{name}: expected seconds >= {low:g}, got {raw!r}"
                         if value < low or math.isnan(value)
                         else f"{name}: expected seconds <= {high:g}, got {raw!r}")
    return value


def metrics_of_task(task: Task) -> list[str]:
    """The metrics a chart can show, the primary's usual choice first."""
    names = names_of(task)
    return sorted(names, key=lambda name: name != "roc_auc")


# state -------------------------------------------------------------------------------

def state_payload(project: Project) -> dict[str, Any]:
    """Champion and challenger with their traffic share, the rollout and its analysis."""
    state = project.registry.state()
    policy = project.policy
    payload: dict[str, Any] = {
        "model": project.model_name,
        "task": policy.model.task.value,
        "metric": {"primary": policy.metric.primary,
                   "direction": scoring.metric(policy.model.task,
                                              policy.metric.primary).direction.value},
        "metrics": metrics_of_task(policy.model.task),
        "champion": None,
        "challenger": None,
        "previous": state.previous,
        "versions": [v.as_dict() for v in state.versions],
        "problems": state.problems,
        "message": None,
        # what the controller's last pass concluded (None until a controller ran)
        "controller": project.store.load_status(project.model_name),
    }
    if not state.versions:
        payload["message"] = (f"model {project.model_name!r} has no version yet: run "
                              "`tether retrain` (or `tether demo`) to train one")
        return payload
    if state.champion is None:
        payload["message"] = (f"model {project.model_name!r} has {len(state.versions)} "
                              "version(s) but no champion: promote one with `tether promote`")
    shares = _traffic_shares(state)
    if state.champion is not None:
        payload["champion"] = _version_card(state, state.champion, shares)
    challenger = state.rollout.version if state.rollout else state.challenger
    if challenger is not None:
        card = _version_card(state, challenger, shares)
        steps = list(policy.rollout.steps)
        rollout = state.rollout
        card.update({
            "mode": rollout.mode if rollout else None,
            "weight": rollout.weight if rollout else 0.0,
            "step": rollout.step if rollout else None,
            "steps": steps,
            "started_at": rollout.started_at if rollout else None,
            "analysis": _latest_analysis(project, challenger),
        })
        payload["challenger"] = card
    return payload


def _traffic_shares(state: RegistryState) -> dict[int, float]:
    """Fraction of client traffic each version answers; a shadow answers none (it mirrors)."""
    shares: dict[int, float] = {}
    weight = 0.0
    if state.rollout is not None and state.rollout.mode == "canary":
        weight = state.rollout.weight
        shares[state.rollout.version] = weight
    elif state.rollout is not None:
        shares[state.rollout.version] = 0.0
    if state.champion is not None:
        shares[state.champion] = 1.0 - weight
    return shares


def _version_card(state: RegistryState, number: int, shares: dict[int, float]) -> dict[str, Any]:
    info = state.version(number)
    card: dict[str, Any] = {"version": number, "traffic_share": shares.get(number, 0.0)}
    if info is not None:
        card.update({"state": info.state, "reason": info.reason, "created_at": info.created_at,
                     "gate": info.gate, "run_id": info.run_id})
    return card


def _latest_analysis(project: Project, version: int) -> dict[str, Any] | None:
    found = project.store.events(project.model_name, kinds=list(ANALYSIS_KINDS), limit=50)
    for event in reversed(found):
        if event.version == version:
            return event.as_dict()
    return None


# time series -------------------------------------------------------------------------

Point = tuple[float | None, str | None]  # a value, or None and why


def timeseries_payload(project: Project, span: TimeRange, metric: str | None,
                       monitor: Monitor | None = None) -> dict[str, Any]:
    """Per version and bucket: traffic, errors, p99 latency, labels, live and estimated
    metric; a metric the bucket does not define is null with its reason. `monitor`
    holds the versions' profiles (a multiclass estimate needs their calibration)."""
    task = project.policy.model.task
    allowed = metrics_of_task(task)
    name_chosen = metric or project.policy.metric.primary
    if name_chosen not in allowed:
        raise InputError(f"metric: {name_chosen!r} is not a metric of a {task.value} model; "
                         f"allowed: {', '.join(allowed)}")
    chosen = scoring.metric(task, name_chosen)
    store, name = project.store, project.model_name
    width = span.bucket_seconds
    window = {"since": span.since, "until": span.until, "bucket_seconds": width}
    from_bins = _from_histogram(task, chosen)
    wants_estimate = chosen.estimable and task is Task.BINARY and chosen.name != "accuracy"
    # Each aggregate is one pass over the window's index entries; they run side by side
    # (SQLite in WAL mode and PostgreSQL both serve concurrent readers).
    workers = 4 if store.concurrent_reads else 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tether-dashboard") as pool:
        traffic_job = pool.submit(store.traffic_buckets, name, **window)
        labels_job = pool.submit(store.label_buckets, name, **window)
        labeled_bins_job = (pool.submit(store.score_histogram, name, labeled=True, **window)
                            if from_bins else None)
        all_bins_job = (pool.submit(store.score_histogram, name, labeled=False, **window)
                        if wants_estimate else None)
        traffic = traffic_job.result()
        labels = {(b.start, b.version): b for b in labels_job.result()}
        labeled_bins = _bins_by_bucket(labeled_bins_job.result() if labeled_bins_job else [])
        all_bins = _bins_by_bucket(all_bins_job.result() if all_bins_job else [])
    monitor = monitor or Monitor(project)
    live = _live_metric(project, chosen, width, labels, labeled_bins,
                        monitor.class_codes if task is Task.MULTICLASS else None)
    estimated = (_estimated_multiclass(project, monitor, chosen, traffic, width)
                 if task is Task.MULTICLASS and chosen.estimable
                 else _estimated_metric(chosen, task, traffic, all_bins))
    series: dict[int, list[dict[str, Any]]] = {}
    for bucket in traffic:
        key = (bucket.start, bucket.version)
        label = labels.get(key)
        labeled = label.labeled if label else 0
        (value, why), samples = live.get(key, ((None, "no labels in the bucket"), 0))
        guess, guess_why = estimated.get(key, (None, None))
        series.setdefault(bucket.version, []).append({
            "t": bucket.start,
            "requests": bucket.requests,
            "request_rate": bucket.requests / width,
            "errors": bucket.errors,
            "error_rate": bucket.errors / bucket.requests if bucket.requests else None,
            "p99_latency_ms": _round(bucket.p99_latency_ms),
            "mean_latency_ms": _round(bucket.mean_latency_ms),
            "labeled": labeled,
            "label_coverage": labeled / bucket.requests if bucket.requests else None,
            "live_metric": _round(value),
            "live_reason": why if value is None else None,
            "live_samples": samples,
            "estimated_metric": _round(guess),
            "estimated_reason": guess_why if guess is None else None,
        })
    events = project.store.events(name, since=span.since)
    return {
        "model": name,
        "metric": chosen.name,
        "direction": chosen.direction.value,
        "metric_source": _metric_source(task, chosen),
        "estimate_source": _estimate_source(task, chosen),
        "since": span.since,
        "until": span.until,
        "bucket_seconds": width,
        "series": [{"version": v, "points": points} for v, points in sorted(series.items())],
        "events": [_event_marker(e.as_dict()) for e in events],
        "message": None if series else (f"no predictions for {name!r} in the last "
                                        f"{_duration(span.until - span.since)}"),
    }


def _counts(task: Task, b: LabelBucket) -> Confusion | ErrorSums | None:
    """The store's totals as the metric's counts (binary confusion, regression error
    sums); multiclass buckets keep no confusion matrix yet."""
    if task is Task.BINARY:
        return Confusion(tp=b.true_positives, fp=b.false_positives, fn=b.false_negatives,
                         tn=b.true_negatives)
    if task is Task.REGRESSION:
        return ErrorSums(n=b.labeled, sum_abs_error=b.sum_abs_error,
                         sum_squared_error=b.sum_squared_error)
    return None


def _from_totals(task: Task, chosen: Metric) -> bool:
    return Source.COUNTS in chosen.sources and task is not Task.MULTICLASS


def _from_histogram(task: Task, chosen: Metric) -> bool:
    return Source.HISTOGRAM in chosen.sources and task is Task.BINARY


def _live_metric(project: Project, chosen: Metric, width: float,
                 labels: dict[tuple[float, int], LabelBucket],
                 binned: dict[tuple[float, int], list[ScoreBin]],
                 class_codes: Callable[[int], list[float] | None] | None = None,
                 ) -> dict[tuple[float, int], tuple[Point, int]]:
    task = chosen.task
    found: dict[tuple[float, int], tuple[Point, int]] = {}
    sampled: list[tuple[float, int]] = []
    for key, bucket in labels.items():
        if bucket.labeled < MIN_BUCKET_LABELS:
            found[key] = ((None, f"{bucket.labeled} label(s) in the bucket, a point needs "
                                 f"{MIN_BUCKET_LABELS}"), bucket.labeled)
        elif _from_totals(task, chosen):
            counts = _counts(task, bucket)
            found[key] = (attempt(partial(chosen.from_counts, counts)), bucket.labeled)
        elif _from_histogram(task, chosen):
            bins = binned.get(key, [])
            found[key] = (attempt(partial(chosen.from_histogram,
                                          {b.bin: b.positives for b in bins},
                                          {b.bin: b.negatives for b in bins})),
                          bucket.labeled)
        else:
            sampled.append(key)
    if sampled:
        frames = project.store.recent_samples(
            project.model_name, [(v, t, t + width) for t, v in sampled], limit=SAMPLE_ROWS,
            labeled_only=True)
        codes: dict[int, list[float] | None] = {}
        for key, frame in zip(sampled, frames, strict=True):
            if class_codes is not None and key[1] not in codes:
                codes[key[1]] = _quietly(class_codes, key[1])
            found[key] = (_sample_metric(chosen, frame, codes.get(key[1])), len(frame))
    return found


def _bins_by_bucket(bins: list[ScoreBin]) -> dict[tuple[float, int], list[ScoreBin]]:
    grouped: dict[tuple[float, int], list[ScoreBin]] = {}
    for b in bins:
        grouped.setdefault((b.start, b.version), []).append(b)
    return grouped


def _quietly(class_codes: Callable[[int], list[float] | None],
             version: int) -> list[float] | None:
    """A version's class codes; None (classes 0..k-1 assumed) when its profile is
    unreadable."""
    try:
        return class_codes(version)
    except TetherError:
        return None


def _sample_metric(chosen: Metric, frame: pd.DataFrame,
                   classes: list[float] | None = None) -> Point:
    """One metric on one bucket's sample of labeled rows, with the scores a metric needs:
    the positive class's probability (binary) or every class's (multiclass)."""
    scores = model_scores(frame) if chosen.needs_scores else None
    if chosen.needs_scores and (scores is None or (scores.ndim == 2)
                                != (chosen.task is Task.MULTICLASS)):
        return None, "some predictions in the bucket have no score"
    if classes is not None and scores is not None and scores.ndim == 2 \
            and len(classes) != scores.shape[1]:
        classes = None
    return attempt(partial(chosen.from_rows, frame["label"].to_numpy(float),
                           frame["prediction"].to_numpy(float), scores, classes=classes))


def _estimated_metric(chosen: Metric, task: Task, traffic: list[TrafficBucket],
                      binned: dict[tuple[float, int], list[ScoreBin]],
                      ) -> dict[tuple[float, int], Point]:
    if task is not Task.BINARY or not chosen.estimable:
        return {}
    if chosen.name == "accuracy":
        # E[accuracy] = mean max(s, 1 - s): the store keeps it per bucket
        return {(b.start, b.version): (b.mean_confidence, None if b.mean_confidence is not None
                                       else "no scored predictions in the bucket")
                for b in traffic}
    found: dict[tuple[float, int], Point] = {}
    for key, bins in binned.items():
        scores = estimate_from_bins({b.bin: b.count for b in bins},
                                    {b.bin: b.score_sum for b in bins}, bins=SCORE_BINS)
        found[key] = (scores.get(chosen.name), scores.reason(chosen.name))
    return found


def _estimated_multiclass(project: Project, monitor: Monitor, chosen: Metric,
                          traffic: list[TrafficBucket], width: float,
                          ) -> dict[tuple[float, int], Point]:
    """Multiclass CBPE per bucket and version: the version's per-class calibration
    applied to the class probabilities of the bucket's latest SAMPLE_ROWS predictions
    (the store keeps no per-class totals)."""
    keys = [(b.start, b.version) for b in traffic]
    if not keys:
        return {}
    frames = project.store.recent_samples(
        project.model_name, [(v, t, t + width) for t, v in keys], limit=SAMPLE_ROWS,
        labeled_only=False)
    calibrators: dict[int, ClassCalibrators | str] = {}
    found: dict[tuple[float, int], Point] = {}
    for key, frame in zip(keys, frames, strict=True):
        version = key[1]
        if version not in calibrators:
            calibrators[version] = _class_calibrators(monitor, version)
        chosen_calibrators = calibrators[version]
        if isinstance(chosen_calibrators, str):
            found[key] = (None, chosen_calibrators)
            continue
        k = len(chosen_calibrators.classes)
        columns = [proba_column(j) for j in range(k)]
        proba = (frame[columns].to_numpy(dtype=float) if set(columns) <= set(frame.columns)
                 else np.empty((0, k)))
        proba = proba[np.isfinite(proba).all(axis=1)]
        if len(proba) < MIN_BUCKET_LABELS:
            found[key] = (None, f"{len(proba)} prediction(s) with class probabilities in "
                                f"the bucket, an estimate needs {MIN_BUCKET_LABELS}")
            continue
        scores = estimate_multiclass(chosen_calibrators, proba)
        found[key] = (scores.get(chosen.name), scores.reason(chosen.name))
    return found


def _class_calibrators(monitor: Monitor, version: int) -> ClassCalibrators | str:
    """The version's per-class calibration, or why there is none."""
    try:
        profile = monitor.profile(version)
    except TetherError as exc:
        return f"no estimate: {exc}"
    if not profile.class_calibration:
        why = profile.meta.get(CALIBRATION_ERROR)
        return f"no estimate: the reference cannot calibrate ({why or 'no calibration'})"
    return ClassCalibrators.from_dict(profile.class_calibration)


def _metric_source(task: Task, chosen: Metric) -> str:
    if _from_totals(task, chosen):
        return "every labeled prediction in the bucket, from the store's running totals"
    if _from_histogram(task, chosen):
        return ("every labeled prediction in the bucket, from score histograms (100 bins) "
                "in the store's running totals")
    return (f"the latest {SAMPLE_ROWS} labeled predictions of each bucket and version "
            f"(buckets with fewer than {MIN_BUCKET_LABELS} labels show no point)")


def _estimate_source(task: Task, chosen: Metric) -> str | None:
    if task is Task.MULTICLASS and chosen.estimable:
        return (f"multiclass confidence-based estimate from the class probabilities of the "
                f"latest {SAMPLE_ROWS} predictions of each bucket and version, with the "
                "version's per-class calibration (assumes it still holds)")
    if task is not Task.BINARY or not chosen.estimable:
        return None
    return ("confidence-based estimate from the scores of every prediction in the bucket, "
            "from the store's running totals (assumes calibrated scores)")


def _event_marker(event: dict[str, Any]) -> dict[str, Any]:
    return {key: event[key] for key in ("id", "ts", "kind", "version", "reason")}


# drift -------------------------------------------------------------------------------

def drift_payload(project: Project, monitor: Monitor, version: int | None,
                  top: int) -> dict[str, Any]:
    """Drift share and the most drifted features, the version's training profile vs the
    monitoring window, judged as `tether monitor` judges it (`window_drift`)."""
    monitoring = project.policy.monitoring
    name = project.model_name
    payload: dict[str, Any] = {"model": name, "version": version, "drift_share": None,
                               "threshold": monitoring.drift_share_threshold,
                               "alpha": monitoring.drift_alpha, "drifted": None,
                               "reference_rows": 0, "current_rows": 0, "feature_count": 0,
                               "prediction_drift": None, "features": [], "message": None}
    if version is None:
        version = project.registry.state().champion
        payload["version"] = version
    if version is None:
        payload["message"] = (f"model {name!r} has no champion yet, so there is no reference "
                              "to compare with")
        return payload
    project.registry.version(version)  # VersionNotFound (404) for an unknown version
    since = (time.time() - monitoring.window_seconds if monitoring.window_seconds else None)
    current = project.store.prediction_window(name, version=version, since=since,
                                              limit=monitoring.window_size)
    payload["current_rows"] = len(current)
    if current.empty:
        payload["message"] = f"version {version} has no predictions yet to compare"
        return payload
    try:
        profile = monitor.profile(version)
    except (TetherError, OSError) as exc:
        payload["message"] = f"version {version} has no reference data to compare with ({exc})"
        return payload
    report = window_drift(profile, current, monitoring)
    payload.update({"reference_rows": report.rows_reference,
                    "feature_count": len(report.features),
                    "prediction_drift": report.prediction_drift})
    if not report.enough_data:
        payload["message"] = f"version {version}: {report.reason}"
        return payload
    ranked = sorted(report.features, key=_most_drifted_first)[:top]
    payload.update({
        "drift_share": report.share_drifted,
        "drifted": report.drifted,
        "features": [_feature_drift(f, histogram(profile.features[f.name], current[f.name]))
                     for f in ranked],
    })
    return payload


def _most_drifted_first(f: FeatureDrift) -> tuple[int, float, float]:
    rank = 0 if f.drifted else 1 if f.drifted is not None else 2
    p_value = f.p_adjusted if f.p_adjusted is not None else f.p_value
    return rank, 1.0 if p_value is None else p_value, -f.scores.get("psi", 0.0)


def _feature_drift(f: FeatureDrift, shares: Histogram) -> dict[str, Any]:
    return {"name": f.name, "kind": f.kind, "method": f.method, "score": f.score,
            "threshold": f.threshold, "p_value": f.p_value, "p_adjusted": f.p_adjusted,
            "psi": f.scores.get("psi"), "drifted": f.drifted, "reason": f.reason,
            **shares.as_dict()}


# events ------------------------------------------------------------------------------

def events_payload(project: Project, *, limit: int, since: float | None,
                   kinds: list[str] | None) -> dict[str, Any]:
    found = project.store.events(project.model_name, kinds=kinds, since=since, limit=limit)
    return {
        "model": project.model_name,
        "events": [e.as_dict() for e in reversed(found)],  # newest first
        "message": None if found else f"no events yet for {project.model_name!r}",
    }


def _round(value: float | None, digits: int = 6) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
