"""Every kind of event tether writes to the log, in one place.

An event is a decision or a fact with the numbers behind it (`tether history`, the
dashboard's timeline, the demo's report read them). Kinds are strings in the store, so
a kind compares equal to its text:

>>> EventKind.PROMOTED == "promoted"
True
>>> sorted(kind.value for kind in EventKind if kind.value.startswith("rollout"))
['rollout_aborted', 'rollout_started', 'rollout_step']
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EventKind"]


class EventKind(StrEnum):
    # training and the gate
    TRAINED = "trained"
    ADOPTED = "adopted"  # a model registered by plain MLflow, taken in by `tether adopt`
    RETRAIN_FAILED = "retrain_failed"
    GATE_PASSED = "gate_passed"
    GATE_FAILED = "gate_failed"
    # registry transitions, by hand or by the controller
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    REPAIRED = "repaired"
    # a server could not load a version (repair never blesses it)
    MODEL_LOAD_FAILED = "model_load_failed"
    # why a retrain (or a rollback) was asked for, and what became of the request
    TRIGGER = "trigger"
    SCHEDULE_FIRED = "schedule_fired"
    TRIGGER_SKIPPED = "trigger_skipped"
    ROLLBACK_SKIPPED = "rollback_skipped"
    RETRAIN_STARTED = "retrain_started"
    DISPATCHED = "dispatched"
    DISPATCH_FAILED = "dispatch_failed"
    HOOK_IGNORED = "hook_ignored"
    # a challenger on its way, and a new champion on probation
    ROLLOUT_STARTED = "rollout_started"
    ROLLOUT_STEP = "rollout_step"
    ROLLOUT_ABORTED = "rollout_aborted"
    PROBATION_PASSED = "probation_passed"
    # the controller itself
    CONTROLLER_ERROR = "controller_error"
    CONTROLLER_RECOVERED = "controller_recovered"
    PUSH_FAILED = "push_failed"
    PRUNED = "pruned"
