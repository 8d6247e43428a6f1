"""What a replay found, per policy: the realized metric per window, decisions, recoveries.

The document is `tether.replay/1` (docs/replay.md describes every field): stable, so a
script can compare runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tether.config import Policy
from tether.events import EventKind
from tether.replay.engine import ArmRun
from tether.replay.history import History
from tether.scoring import Task, evaluate, metric

__all__ = ["SCHEMA", "Windows", "summarize_arm", "windows_of"]

SCHEMA = "tether.replay/1"
BASELINE_WINDOWS = 3
MIN_WINDOW_ROWS = 2
# the event log's bookkeeping, not decisions
NOT_DECISIONS = {EventKind.PRUNED.value, EventKind.SCHEDULE_FIRED.value}
CHANGE_KINDS = ("drift", "metric", "change")
NICE_WINDOWS = (3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, 91 * 86400.0,
                365 * 86400.0, 5 * 365 * 86400.0)
MAX_WINDOWS = 60


@dataclass(frozen=True)
class Windows:
    """Consecutive windows of `width` seconds from `start`; `edges` (k + 1,)."""

    start: float
    width: float
    edges: np.ndarray

    def of(self, times: np.ndarray) -> np.ndarray:
        """The window of each time (k for times past the last edge)."""
        return np.clip(((times - self.start) // self.width).astype(int), 0,
                       len(self.edges) - 2)


def default_window(span: float) -> float:
    """The smallest of 1h, 1d, 1w, 30d, 91d, 1y, 5y that cuts `span` into at most 60."""
    for width in NICE_WINDOWS:
        if span / width <= MAX_WINDOWS:
            return width
    return span / MAX_WINDOWS


def windows_of(start: float, end: float, width: float) -> Windows:
    count = max(1, int(np.ceil((end - start) / width - 1e-9)))
    return Windows(start, width, start + width * np.arange(count + 1, dtype=float))


def floor_of(policy: Policy) -> float | None:
    """The floor the policy holds its primary metric to: the trigger's, else the gate's."""
    if policy.triggers.metric_floor is not None:
        return float(policy.triggers.metric_floor)
    floor = policy.gate.floors.get(policy.metric.primary)
    return None if floor is None else float(floor)


def summarize_arm(run: ArmRun, history: History, policy: Policy, windows: Windows,
                  changes: list[float]) -> dict[str, Any]:
    """One policy's entry in the document (see docs/replay.md)."""
    task = policy.model.task
    primary = policy.metric.primary
    higher = metric(task, primary).bigger_is_better
    truth = history.frame[history.target].to_numpy()[run.index]
    served_at = history.times[run.index]
    which = windows.of(served_at)
    per_window: list[dict[str, Any]] = []
    for k in range(len(windows.edges) - 1):
        rows = np.flatnonzero(which == k)
        per_window.append(_window_scores(task, primary, truth[rows], run.prediction[rows],
                                         None if run.score is None else run.score[rows]))
    values = np.array([np.nan if w["metric"] is None else w["metric"] for w in per_window])
    floor = floor_of(policy)
    measured = values[~np.isnan(values)]
    under = None
    if floor is not None and len(measured):
        under = float(np.mean(measured < floor if higher else measured > floor))
    accuracy = [w.get("accuracy") for w in per_window]
    known = [a for a in accuracy if a is not None]
    events = run.events
    count = _counter(events)
    trained = [e for e in events if e.kind == EventKind.TRAINED and
               e.version != run.initial_version]
    labels_used = sum(int((e.data.get("rows") or {}).get("recent", 0)) for e in trained)
    tolerance = float(policy.rollback.max_metric_drop)
    return {
        "name": run.arm.name,
        "kind": run.arm.kind,
        "every_seconds": run.arm.every,
        "windows": per_window,
        "mean_metric": float(measured.mean()) if len(measured) else None,
        "mean_accuracy": float(np.mean(known)) if known else None,
        "share_under_floor": under,
        "retrains": count(EventKind.RETRAIN_STARTED),
        "retrains_failed": count(EventKind.RETRAIN_FAILED),
        "gates_failed": count(EventKind.GATE_FAILED),
        "rollouts": count(EventKind.ROLLOUT_STARTED),
        "rollouts_aborted": count(EventKind.ROLLOUT_ABORTED),
        "promotions": sum(1 for e in events if e.kind == EventKind.PROMOTED
                          and e.version != run.initial_version),
        "rollbacks": count(EventKind.ROLLED_BACK),
        "labels_sent": run.labels_sent,
        "labels_used": labels_used,
        "recoveries": recoveries(values, windows, changes, higher, tolerance),
        "decisions": [{"ts": e.ts, "kind": e.kind, "version": e.version, "reason": e.reason}
                      for e in events if e.kind not in NOT_DECISIONS],
        "passes": run.passes,
        "costs": run.costs.as_dict(),
    }


def detected_changes(run: ArmRun) -> list[dict[str, Any]]:
    """The changes the project's policy detected: its drift, metric and change triggers."""
    found = []
    for event in run.events:
        if event.kind != EventKind.TRIGGER:
            continue
        kind = str(event.data.get("kind", ""))
        if kind in CHANGE_KINDS:
            found.append({"ts": event.ts, "kind": kind, "reason": event.reason})
    return found


def recoveries(values: np.ndarray, windows: Windows, changes: list[float], higher: bool,
               tolerance: float) -> list[dict[str, Any]]:
    """For each detected change: the first window, starting at or after it, whose metric
    is back within `tolerance` of the mean of the (up to) 3 windows before the change's
    window; its end is when the metric recovered (null: it never did)."""
    found = []
    for ts in changes:
        k = int(windows.of(np.array([ts]))[0])
        before = values[max(0, k - BASELINE_WINDOWS):k]
        before = before[~np.isnan(before)]
        entry: dict[str, Any] = {"change_ts": ts, "baseline": None, "recovered_ts": None,
                                 "seconds": None}
        if len(before):
            baseline = float(before.mean())
            entry["baseline"] = baseline
            for j in range(k, len(values)):
                if windows.edges[j] < ts or np.isnan(values[j]):
                    continue
                good = (values[j] >= baseline - tolerance if higher
                        else values[j] <= baseline + tolerance)
                if good:
                    end = float(windows.edges[j + 1])
                    entry["recovered_ts"], entry["seconds"] = end, end - ts
                    break
        found.append(entry)
    return found


def _window_scores(task: Task, primary: str, truth: np.ndarray, predictions: np.ndarray,
                   scores: np.ndarray | None) -> dict[str, Any]:
    n = len(truth)
    entry: dict[str, Any] = {"rows": n, "metric": None}
    if n < MIN_WINDOW_ROWS:
        return entry
    if task is not Task.MULTICLASS:
        truth, predictions = truth.astype(float), predictions.astype(float)
    elif scores is not None and scores.ndim != 2:
        scores = None  # the server answers one score per row, not the class probabilities
    names = [primary] + (["accuracy"] if task.classification and primary != "accuracy" else [])
    values = evaluate(task, truth, predictions, scores if task.classification else None,
                      names=names)
    entry["metric"] = _finite(values.get(primary))
    if task.classification:
        entry["accuracy"] = _finite(values.get("accuracy"))
    return entry


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _counter(events: list[Any]) -> Any:
    def count(kind: EventKind) -> int:
        return sum(1 for e in events if e.kind == kind)

    return count


