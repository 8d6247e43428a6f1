"""The controller's own triggers, from the champion's live picture: drift, a metric below
its floor (or dropped from the champion's gate baseline), a change detector.

Pure: a snapshot and the last status in, conditions and fired triggers out. Each watcher
is a condition (DriftDetected, MetricDegraded, ChangeDetected) about the champion's
version, persisted with the status, and fires on its rising edge only (drift after
`triggers.drift_consecutive` checks in a row), so a model that stays degraded asks for
one retrain, not one per pass, and a restarted controller does not ask again; a new
champion starts with fresh edges. The metric watcher has hysteresis: it turns True when
the optimistic end of the live metric's interval is past the limit and back to False
only when the point value is within it again, so a metric hovering at its limit does not
fire at every crossing. The cool-down and the budget in `triggers.admit` bound the rest.
While a rollout runs (or nothing is champion) the watchers stand still: their
conditions keep their status and count.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.config import Policy
from tether.control import status as st
from tether.control.observe import Observed
from tether.control.status import Condition, ControllerStatus, merge
from tether.control.triggers import Trigger, TriggerKind
from tether.monitoring.monitor import Snapshot
from tether.registry import RegistryState
from tether.scoring import metric

__all__ = ["Watch", "gate_baseline", "watch"]


@dataclass(frozen=True)
class Watch:
    conditions: tuple[Condition, ...]  # to merge into the status
    fired: tuple[Trigger, ...]  # rising edges on this check


def watch(observed: Observed, policy: Policy, now: float) -> Watch:
    """The watchers' conditions on this check, and the triggers that fire on it."""
    state = observed.registry
    if not observed.watching:
        return Watch((), ())
    if state.champion is None or state.rollout is not None or observed.problems:
        why = ("the registry is being repaired" if observed.problems
               else "a rollout is in progress" if state.rollout is not None
               else "nothing is champion")
        return Watch((Condition(st.MONITORING, st.UNKNOWN, st.NOT_WATCHING,
                                f"the watchers wait: {why}", now),), ())
    if observed.champion is None:
        message = observed.monitoring_error or "no live picture of the champion"
        return Watch(tuple(Condition(kind, status, st.UNAVAILABLE, message, now,
                                     version=state.champion)
                           for kind, status in ((st.MONITORING, st.FALSE),
                                                (st.DRIFT_DETECTED, st.UNKNOWN),
                                                (st.METRIC_DEGRADED, st.UNKNOWN),
                                                (st.CHANGE_DETECTED, st.UNKNOWN))), ())
    snap = observed.champion
    previous = observed.previous
    monitoring = Condition(st.MONITORING, st.TRUE, st.MEASURED,
                           f"version {snap.version}: {snap.n_predictions} predictions, "
                           f"{snap.n_labels} labels in the window", now, version=snap.version)
    conditions = [monitoring]
    fired: list[Trigger] = []
    for check in (_drift, _metric, _change):
        condition, trigger = check(snap, state, policy, previous, now)
        conditions.append(condition)
        if trigger is not None:
            fired.append(trigger)
    return Watch(tuple(conditions), tuple(fired))


def _was(previous: ControllerStatus | None, kind: str, version: int) -> Condition | None:
    """What the last pass said of the same version (another version's edge is no edge)."""
    found = previous.condition(kind) if previous is not None else None
    return found if found is not None and found.version == version else None


def _rising(previous: ControllerStatus | None, condition: Condition) -> bool:
    assert condition.version is not None
    before = _was(previous, condition.type, condition.version)
    return condition.status == st.TRUE and (before is None or before.status != st.TRUE)


def _drift(snap: Snapshot, state: RegistryState, policy: Policy,
           previous: ControllerStatus | None, now: float) -> tuple[Condition, Trigger | None]:
    threshold = policy.monitoring.drift_share_threshold
    needed = policy.triggers.drift_consecutive
    share = snap.drift.share_drifted if snap.drift is not None and snap.drift.enough_data \
        else None
    version = snap.version
    if share is None:
        reason = snap.reasons.get("drift", "not enough data for a drift verdict")
        return Condition(st.DRIFT_DETECTED, st.UNKNOWN, st.NOT_ENOUGH_DATA, reason, now,
                         version=version), None
    if share <= threshold:
        return Condition(st.DRIFT_DETECTED, st.FALSE, st.BELOW_THRESHOLD,
                         f"drift share {share:.2f} <= {threshold:.2f}", now,
                         version=version), None
    condition = merge(_was(previous, st.DRIFT_DETECTED, version),
                      Condition(st.DRIFT_DETECTED, st.TRUE, st.ABOVE_THRESHOLD,
                                f"drift share {share:.2f} > {threshold:.2f}", now,
                                version=version))
    if condition.checks != needed:
        return condition, None
    return condition, Trigger(TriggerKind.DRIFT,
                              f"drift share {share:.2f} > {threshold:.2f} for {needed} "
                              "consecutive checks", data={"share_drifted": share}, ts=now)


def _metric(snap: Snapshot, state: RegistryState, policy: Policy,
            previous: ControllerStatus | None, now: float) -> tuple[Condition, Trigger | None]:
    triggers = policy.triggers
    chosen = metric(policy.model.task, policy.metric.primary)
    primary = chosen.name
    version = snap.version
    if triggers.metric_floor is None and triggers.metric_drop is None:
        return Condition(st.METRIC_DEGRADED, st.FALSE, st.NOT_CONFIGURED,
                         "neither triggers.metric_floor nor triggers.metric_drop is set",
                         now, version=version), None
    estimate = snap.live.get(primary) if snap.live else None
    # Fire on the interval's optimistic end (a drop must be clear on these labels, not
    # noise of a small window); clear on the point value.
    best = None if estimate is None else (estimate.upper if chosen.bigger_is_better
                                          else estimate.lower)
    if estimate is None or estimate.value is None or best is None \
            or snap.n_labels < policy.monitoring.min_labels:
        why = (estimate.reason if estimate is not None and estimate.reason else
               f"live {primary} needs {policy.monitoring.min_labels} labels "
               f"(monitoring.min_labels); the window has {snap.n_labels}")
        return Condition(st.METRIC_DEGRADED, st.UNKNOWN, st.NOT_ENOUGH_DATA, why, now,
                         version=version), None
    value = estimate.value
    live = (f"live {primary} {chosen.format(value)} (CI {chosen.format(estimate.lower)}-"
            f"{chosen.format(estimate.upper)}, {estimate.n} labels)")
    baseline = gate_baseline(state, primary)
    limits: list[tuple[str, str, float]] = []  # (reason, words, the limit)
    if triggers.metric_floor is not None:
        limits.append((st.BELOW_FLOOR, f"worse than {chosen.limit_name} "
                                       f"{chosen.format(triggers.metric_floor)}",
                       triggers.metric_floor))
    if triggers.metric_drop is not None and baseline is not None:
        # the value `metric_drop` worse than the baseline, in the metric's direction
        limit = baseline - (triggers.metric_drop if chosen.bigger_is_better
                            else -triggers.metric_drop)
        limits.append((st.DROPPED, f"is more than metric_drop "
                                   f"{chosen.format(triggers.metric_drop)} worse than the "
                                   f"champion's baseline {chosen.format(baseline)}", limit))
    past = [(why, words) for why, words, limit in limits if chosen.worse(best, limit)]
    if past:
        condition = Condition(st.METRIC_DEGRADED, st.TRUE, past[0][0],
                              "; ".join(f"{live} {words}" for _, words in past), now,
                              version=version)
    elif not any(chosen.worse(value, limit) for _, _, limit in limits):
        return Condition(st.METRIC_DEGRADED, st.FALSE, st.WITHIN_LIMITS, live, now,
                         version=version), None
    else:  # the point is past a limit, the interval not clearly: hold what the last pass said
        before = _was(previous, st.METRIC_DEGRADED, version)
        if before is None or before.status != st.TRUE:
            return Condition(st.METRIC_DEGRADED, st.FALSE, st.WITHIN_LIMITS,
                             f"{live}: not clearly past a limit", now, version=version), None
        return Condition(st.METRIC_DEGRADED, st.TRUE, before.reason,
                         f"{live}: not yet back within limits", now, version=version), None
    if not _rising(previous, condition):
        return condition, None
    return condition, Trigger(TriggerKind.METRIC, condition.message,
                              data={"metric": primary, "direction": chosen.direction.value,
                                    "value": value, "baseline": baseline,
                                    "labels": snap.n_labels}, ts=now)


def _change(snap: Snapshot, state: RegistryState, policy: Policy,
            previous: ControllerStatus | None, now: float) -> tuple[Condition, Trigger | None]:
    if not policy.triggers.on_change_detected:
        return Condition(st.CHANGE_DETECTED, st.FALSE, st.NOT_CONFIGURED,
                         "triggers.on_change_detected is off", now,
                         version=snap.version), None
    streams = [stream for stream, detected in sorted(snap.change.items()) if detected]
    if not streams:
        return Condition(st.CHANGE_DETECTED, st.FALSE, st.QUIET,
                         "no change detector fired in the window", now,
                         version=snap.version), None
    condition = Condition(st.CHANGE_DETECTED, st.TRUE, st.FIRED,
                          f"change detected on the {', '.join(streams)} stream", now,
                          version=snap.version)
    if not _rising(previous, condition):
        return condition, None
    return condition, Trigger(TriggerKind.CHANGE, condition.message, data={"streams": streams},
                              ts=now)


def gate_baseline(state: RegistryState, primary: str) -> float | None:
    """The champion's primary metric as its gate measured it."""
    info = state.version(state.champion) if state.champion is not None else None
    if info is None or not info.gate:
        return None
    value = info.gate.get("scores", {}).get("challenger", {}).get(primary)
    return float(value) if value is not None else None
