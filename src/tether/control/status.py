"""What the controller last saw and decided, as conditions, persisted once per pass.

A condition is a statement about the model's loop with a status (True, False, Unknown),
a reason (one CamelCase word from the constants below), a message with the numbers,
the model version it speaks of (if any: like Kubernetes' observedGeneration) and `since`,
when it took its present status and reason. Setting a condition that did not change
keeps its `since` (and counts one more check), as Kubernetes and Argo Rollouts do, so
"waiting for labels since 10:02" survives any number of passes and a restart:
the status lives in the store, where the dashboard, `tether status` and the
controller's metrics read it.

>>> first = Condition(ROLLOUT, TRUE, WAITING_FOR_LABELS, "labels 3 < min_labels 50", 100.0)
>>> later = merge(first, Condition(ROLLOUT, TRUE, WAITING_FOR_LABELS, "labels 9 < 50", 160.0))
>>> later.since, later.checks, later.message
(100.0, 2, 'labels 9 < 50')
>>> merge(later, Condition(ROLLOUT, TRUE, STEP_PASSED, "step passed", 200.0)).since
200.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "CONDITION_TYPES",
    "FALSE",
    "TRUE",
    "UNKNOWN",
    "Condition",
    "ControllerStatus",
    "merge",
]

# statuses
TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
STATUSES = (TRUE, FALSE, UNKNOWN)

# condition types
HEALTHY = "Healthy"  # the last pass ran to its end
REGISTRY_CONSISTENT = "RegistryConsistent"  # aliases and tags agree
ROLLOUT = "Rollout"  # True while a challenger takes (or mirrors) traffic
PROBATION = "Probation"  # True while a new champion is watched against the previous one
RETRAINING = "Retraining"  # True while a retrain runs (outside the pass)
MONITORING = "Monitoring"  # the champion's live picture could be computed
DRIFT_DETECTED = "DriftDetected"
METRIC_DEGRADED = "MetricDegraded"
CHANGE_DETECTED = "ChangeDetected"
CONDITION_TYPES = (HEALTHY, REGISTRY_CONSISTENT, ROLLOUT, PROBATION, RETRAINING, MONITORING,
                   DRIFT_DETECTED, METRIC_DEGRADED, CHANGE_DETECTED)
# A change of these to False is an error worth one event (and one back to True, another).
ERROR_CONDITIONS = (HEALTHY, MONITORING)

# reasons
PASS_SUCCEEDED = "PassSucceeded"
PASS_FAILED = "PassFailed"
CONSISTENT = "Consistent"
REPAIRED = "Repaired"
NEEDS_A_PERSON = "NeedsAPerson"
IDLE = "Idle"
STARTED = "Started"
STEP_PASSED = "StepPassed"
WAITING_FOR_PREDICTIONS = "WaitingForPredictions"
WAITING_FOR_LABELS = "WaitingForLabels"
OBSERVING = "Observing"
PROMOTED = "Promoted"
ABORTED = "Aborted"
PASSED = "Passed"
ROLLED_BACK = "RolledBack"
NO_PREVIOUS = "NoPrevious"
RUNNING = "Running"
FINISHED = "Finished"
FAILED = "Failed"
DISPATCHED = "Dispatched"
MEASURED = "Measured"
UNAVAILABLE = "Unavailable"
NOT_WATCHING = "NotWatching"
ABOVE_THRESHOLD = "AboveThreshold"
BELOW_THRESHOLD = "BelowThreshold"
NOT_ENOUGH_DATA = "NotEnoughData"
NOT_CONFIGURED = "NotConfigured"
BELOW_FLOOR = "BelowFloor"
DROPPED = "Dropped"
WITHIN_LIMITS = "WithinLimits"
FIRED = "Fired"
QUIET = "Quiet"


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    since: float
    checks: int = 1  # consecutive passes with this status and reason
    version: int | None = None  # the model version it is about

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"condition {self.type}: status {self.status!r} is not one of "
                             f"{', '.join(STATUSES)}")

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "status": self.status, "reason": self.reason,
                "message": self.message, "since": self.since, "checks": self.checks,
                "version": self.version}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Condition:
        return cls(type=str(raw["type"]), status=str(raw["status"]), reason=str(raw["reason"]),
                   message=str(raw.get("message", "")), since=float(raw["since"]),
                   checks=int(raw.get("checks", 1)),
                   version=None if raw.get("version") is None else int(raw["version"]))


def merge(previous: Condition | None, new: Condition) -> Condition:
    """`new`, keeping `previous`'s `since` (and counting one more check) when neither its
    status, its reason nor the version it is about changed."""
    if previous is None or (previous.status, previous.reason, previous.version) != (
            new.status, new.reason, new.version):
        return new
    return replace(new, since=previous.since, checks=previous.checks + 1)


@dataclass(frozen=True)
class ControllerStatus:
    """One controller pass, as people and the next pass read it."""

    model: str
    ts: float  # when the pass ran
    owner: str  # which controller wrote it
    conditions: tuple[Condition, ...]
    actions: tuple[str, ...] = ()  # what the pass did, one line each
    analysis: dict[str, Any] | None = None  # the latest rollout or probation analysis
    pruned_at: float | None = None  # the last time the retention policy was applied
    retry_in: float | None = None  # after a failed pass: seconds until the next attempt

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def with_conditions(self, conditions: Iterable[Condition], **changes: Any) -> ControllerStatus:
        """This status with `conditions` merged in (each keeps its `since` if unchanged)."""
        merged = {c.type: c for c in self.conditions}
        for new in conditions:
            merged[new.type] = merge(merged.get(new.type), new)
        ordered = tuple(sorted(merged.values(), key=_order))
        return replace(self, conditions=ordered, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ts": self.ts, "owner": self.owner,
                "conditions": [c.as_dict() for c in self.conditions],
                "actions": list(self.actions), "analysis": self.analysis,
                "pruned_at": self.pruned_at, "retry_in": self.retry_in}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ControllerStatus:
        return cls(model=str(raw["model"]), ts=float(raw["ts"]), owner=str(raw["owner"]),
                   conditions=tuple(Condition.from_dict(c) for c in raw.get("conditions", [])),
                   actions=tuple(raw.get("actions", [])), analysis=raw.get("analysis"),
                   pruned_at=raw.get("pruned_at"), retry_in=raw.get("retry_in"))

    @classmethod
    def empty(cls, model: str, owner: str, ts: float) -> ControllerStatus:
        return cls(model=model, ts=ts, owner=owner, conditions=())


def _order(condition: Condition) -> int:
    return CONDITION_TYPES.index(condition.type) if condition.type in CONDITION_TYPES \
        else len(CONDITION_TYPES)
