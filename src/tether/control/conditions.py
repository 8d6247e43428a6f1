"""The conditions a pass leaves behind, from what it observed, planned and applied.

Pure, like `plan`: the status a pass persists is computed here and only here, so the
dashboard, `tether status`, the controller's metrics and the next pass all read the same
statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tether.config import Policy
from tether.control import status as st
from tether.control.actions import (
    AbortRollout,
    Action,
    Dispatch,
    PassProbation,
    Promote,
    Repair,
    RollBack,
    SetStep,
    StartRetrain,
    StartRollout,
    Wait,
)
from tether.control.apply import Applied
from tether.control.observe import Observed
from tether.control.status import Condition, ControllerStatus
from tether.control.watch import watch

__all__ = ["conditions", "failed_pass"]


def conditions(observed: Observed, actions: Sequence[Action], applied: Sequence[Applied],
               policy: Policy, now: float) -> list[Condition]:
    """Every condition this pass can speak to; the others keep what the last pass said."""
    found = [_healthy(applied, now), _registry(observed, actions, applied, now)]
    if observed.problems:
        return found  # a repair pass decides nothing else
    found += [c for c in (_rollout(observed, actions, now), _probation(observed, actions, now),
                          _retraining(observed, actions, applied, now)) if c is not None]
    found += watch(observed, policy, now).conditions
    return found


def failed_pass(previous: ControllerStatus, error: str, now: float,
                retry_in: float) -> ControllerStatus:
    """The last status with Healthy turned False: what a pass that could not finish
    (the store or the registry unreachable) leaves, if it can leave anything."""
    return previous.with_conditions(
        [Condition(st.HEALTHY, st.FALSE, st.PASS_FAILED, error, now)], retry_in=retry_in)


def _healthy(applied: Sequence[Applied], now: float) -> Condition:
    failed = [a for a in applied if a.error is not None
              and not isinstance(a.action, RollBack | Dispatch)]
    if failed:
        return Condition(st.HEALTHY, st.FALSE, st.PASS_FAILED, failed[0].line(), now)
    return Condition(st.HEALTHY, st.TRUE, st.PASS_SUCCEEDED, "passes run to their end", now)


def _registry(observed: Observed, actions: Sequence[Action], applied: Sequence[Applied],
              now: float) -> Condition:
    repair = next((a for a in applied if isinstance(a.action, Repair)), None)
    if repair is not None:
        outcome = repair.detail or repair.error or (
            f"left to the next pass: {repair.moved}" if repair.moved else "repaired")
        return Condition(st.REGISTRY_CONSISTENT, st.FALSE, st.REPAIRED,
                         f"{'; '.join(observed.problems)} -> {outcome}", now)
    if observed.unrepairable:
        return Condition(st.REGISTRY_CONSISTENT, st.FALSE, st.NEEDS_A_PERSON,
                         "; ".join(observed.unrepairable), now)
    return Condition(st.REGISTRY_CONSISTENT, st.TRUE, st.CONSISTENT,
                     "aliases and tags agree", now)


def _rollout(observed: Observed, actions: Sequence[Action], now: float) -> Condition | None:
    for action in actions:
        match action:
            case StartRollout():
                return Condition(st.ROLLOUT, st.TRUE, st.STARTED, action.reason, now,
                                 version=action.version)
            case SetStep():
                return Condition(st.ROLLOUT, st.TRUE, st.STEP_PASSED, action.describe(), now,
                                 version=action.version)
            case Wait(subject=st.ROLLOUT):
                rollout = observed.registry.rollout
                return Condition(st.ROLLOUT, st.TRUE, action.why, action.reason, now,
                                 version=rollout.version if rollout else None)
            case Promote(rollout=spec) if spec is not None:
                return Condition(st.ROLLOUT, st.FALSE, st.PROMOTED, action.describe(), now,
                                 version=action.version)
            case AbortRollout():
                return Condition(st.ROLLOUT, st.FALSE, st.ABORTED, action.describe(), now,
                                 version=action.version)
    if observed.registry.rollout is None:
        previous = observed.previous.condition(st.ROLLOUT) if observed.previous else None
        if previous is not None and previous.status == st.FALSE:
            return None  # "promoted" or "aborted" stays until the next rollout
        return Condition(st.ROLLOUT, st.FALSE, st.IDLE, "no rollout", now)
    return None


def _probation(observed: Observed, actions: Sequence[Action], now: float) -> Condition | None:
    for action in actions:
        match action:
            case Wait(subject=st.PROBATION):
                window = observed.probation
                return Condition(st.PROBATION, st.TRUE, action.why, action.reason, now,
                                 version=window.version if window else None)
            case PassProbation():
                return Condition(st.PROBATION, st.FALSE, st.PASSED, action.describe(), now,
                                 version=action.version)
            case RollBack():
                return Condition(st.PROBATION, st.FALSE, st.ROLLED_BACK, action.describe(),
                                 now, version=action.version)
    state = observed.registry
    if state.rollout is not None:
        return None  # probation waits while a challenger rolls out
    previous = observed.previous.condition(st.PROBATION) if observed.previous else None
    if previous is not None and previous.status == st.FALSE:
        return None
    if state.champion is not None and state.previous is None:
        return Condition(st.PROBATION, st.FALSE, st.NO_PREVIOUS,
                         f"version {state.champion} replaced no version: nothing to compare "
                         "it with", now, version=state.champion)
    return Condition(st.PROBATION, st.FALSE, st.IDLE, "no champion on probation", now)


def _retraining(observed: Observed, actions: Sequence[Action], applied: Sequence[Applied],
                now: float) -> Condition | None:
    for result in applied:
        match result.action:
            case StartRetrain(trigger=trigger) if result.ok:
                return Condition(st.RETRAINING, st.TRUE, st.RUNNING,
                                 f"{trigger.kind.value}: {trigger.reason}", now)
            case Dispatch(repo=repo, trigger=trigger) if result.ok:
                return Condition(st.RETRAINING, st.FALSE, st.DISPATCHED,
                                 f"handed to {repo}'s workflow ({trigger.kind.value}: "
                                 f"{trigger.reason})", now)
            case Dispatch() if not result.ok:
                return Condition(st.RETRAINING, st.FALSE, st.FAILED,
                                 f"dispatch failed: {result.error}", now)
    running = observed.retraining
    if running is not None:
        return Condition(st.RETRAINING, st.TRUE, st.RUNNING,
                         f"{running.trigger.kind.value}: {running.trigger.reason} (since "
                         f"{_when(running.started)})", now)
    last = observed.last_retrain
    if last is not None and last.error is not None:
        return Condition(st.RETRAINING, st.FALSE, st.FAILED, last.error, now)
    if last is not None:
        verdict = "passed" if last.gate_passed else "failed"
        return Condition(st.RETRAINING, st.FALSE, st.FINISHED,
                         f"trained version {last.version}; gate {verdict}", now)
    previous = observed.previous.condition(st.RETRAINING) if observed.previous else None
    if previous is not None and previous.status == st.FALSE:
        return None
    return Condition(st.RETRAINING, st.FALSE, st.IDLE, "no retrain running", now)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
