"""Plan: what the controller does next, and why, from one observed snapshot.

`plan(observed, policy, now)` is pure: no I/O, no clock but `now`. It reads like the
runbook it replaces, in the order the controller acts:

1. A registry that a crash left inconsistent is repaired first; nothing else is decided
   on it (the next pass sees the repaired registry). A problem no repair fixes (no
   version fit to serve is left) is a condition for a person; the pass goes on.
2. An asked rollback (Alertmanager, GitHub) aborts the rollout, or puts `previous` back.
3. A champion on probation that does worse than the version it replaced is rolled
   back; one measured as good, for `rollback.probation_seconds`, passes. A champion
   nobody measured (fewer than `rollback.probation_min_predictions` predictions) stays
   on probation: too little data is never a pass.
4. Retrain triggers (hooks, people, the watchers, the schedule) pass admission
   (cool-down, daily budget), one rollout and one retrain at a time; an admitted one
   starts a retrain outside the pass, or dispatches it to CI.
5. A rollout step is analysed against the champion on the same window: pass moves to
   the next step (or promotes after the last), fail or the step deadline aborts it,
   inconclusive waits. Without a rollout, the newest candidate that passed its gate
   starts one (or becomes the first champion).
6. The retention policy, once per `retention.prune_interval_seconds`.

Each action carries its reason and numbers; `Wait` says what the loop waits for.
"""

from __future__ import annotations

from dataclasses import replace

from tether.config import Policy, RolloutPolicy
from tether.control import status as st
from tether.control.actions import (
    AbortRollout,
    Action,
    Dispatch,
    Fire,
    PassProbation,
    Promote,
    Prune,
    Repair,
    RollBack,
    SetStep,
    SkipTrigger,
    StartRetrain,
    StartRollout,
    Wait,
    describe_rollout,
    spec_dict,
)
from tether.control.analysis import Analysis, ArmStats, Verdict, assess
from tether.control.observe import Observed, ProbationWindow, RolloutWindow
from tether.control.triggers import Trigger, TriggerAction, TriggerKind, admit, schedule_due
from tether.control.watch import watch
from tether.registry import RegistryState, RolloutSpec, State

__all__ = ["plan", "probation_policy", "ready_candidate"]


def plan(observed: Observed, policy: Policy, now: float) -> list[Action]:
    """The actions of one pass, in the order they are applied."""
    state = observed.registry
    if observed.problems:
        return [Repair(observed.problems)]
    actions: list[Action] = []
    rollbacks = [t for t in observed.triggers if t.action is TriggerAction.ROLLBACK]
    if rollbacks:
        asked = _asked_rollback(rollbacks, state)
        actions.append(asked)
        if not isinstance(asked, SkipTrigger):
            return actions  # the registry changes: retrain triggers wait for the next pass
    if observed.probation is not None and state.rollout is None:
        verdict = _probation(observed.probation, policy, now)
        actions.append(verdict)
        if isinstance(verdict, RollBack):
            return actions
    actions += _retrain(observed, policy, now)
    if state.rollout is not None:
        actions.append(_advance(state, observed.rollout, policy, now))
    elif (version := ready_candidate(state)) is not None and observed.retraining is None:
        # a running retrain has gated its version but not yet recorded the verdict: the
        # rollout starts once the job is over, so the log says gate, then rollout
        actions.append(_start(state, version, policy, now))
    pruned_at = observed.previous.pruned_at if observed.previous is not None else None
    if pruned_at is None or now - pruned_at >= policy.retention.prune_interval_seconds:
        actions.append(Prune(now))
    return actions


# 2. asked rollbacks -------------------------------------------------------------------

def _asked_rollback(triggers: list[Trigger], state: RegistryState) -> Action:
    first, also = triggers[0], tuple(triggers[1:])
    reason = f"{first.kind.value}: {first.reason}"
    stale = _stale(first, state)
    if stale is not None:
        return SkipTrigger(first, stale, also=also)
    if state.rollout is not None:
        return AbortRollout(state.rollout, reason, trigger=first, also=also)
    if state.champion is None:
        return SkipTrigger(first, "nothing is serving yet: there is no champion to roll back",
                           also=also)
    if state.previous is None:
        return SkipTrigger(first, f"version {state.champion} is champion and there is no "
                                  "previous version to roll back to; pass --to VERSION to "
                                  "choose one", also=also)
    return RollBack(state.champion, state.previous, reason, trigger=first, also=also)


def _stale(trigger: Trigger, state: RegistryState) -> str | None:
    """Why an alert asking for a rollback is about a version or route that no longer
    serves, or None. An alert's `version` and `route` labels say what it measured; a
    rate over minutes (the shipped canary alerts: 5 m) outlives the canary it measured,
    and must not roll back the champion that canary became."""
    labels = trigger.data.get("labels") or {}
    route, named = labels.get("route"), labels.get("version")
    try:
        version = int(named) if named not in (None, "") else None
    except (TypeError, ValueError):
        version = None
    rollout = state.rollout.version if state.rollout is not None else None
    if route in ("canary", "shadow"):
        if rollout is None:
            return f"about the {route} of version {version or '?'}, and no rollout is running"
        if version is not None and version != rollout:
            return f"about the {route} of version {version}; version {rollout} rolls out now"
    elif version is not None and version not in (state.champion, rollout):
        return (f"about version {version}, which no longer serves (champion: version "
                f"{state.champion})")
    return None


# 3. probation -------------------------------------------------------------------------

def probation_policy(policy: Policy) -> RolloutPolicy:
    """The rollout analysis with the rollback policy's limits."""
    rollback = policy.rollback
    return RolloutPolicy(min_predictions=rollback.probation_min_predictions,
                         min_labels=policy.rollout.min_labels,
                         max_error_rate=rollback.max_error_rate,
                         max_metric_drop=rollback.max_metric_drop,
                         max_p99_latency_ms=policy.rollout.max_p99_latency_ms,
                         max_latency_ratio=policy.rollout.max_latency_ratio,
                         alpha=policy.rollout.alpha)


def _probation(window: ProbationWindow, policy: Policy, now: float) -> Action:
    limits = probation_policy(policy)
    # the previous champion served earlier: latency is not compared side by side, and a
    # p99 over the ceiling is inconclusive rather than a rollback (see `assess`)
    # A label-free estimate, blind to concept drift (the usual reason for a retrain), may
    # roll back a champion promoted by hand; one that came through a canary was compared
    # with this same previous version side by side, and only labels overrule that.
    analysis = assess(window.current, window.baseline, limits,
                      primary=policy.metric.primary, task=policy.model.task.value,
                      estimate_rejects=not window.canaried, same_window=False)
    numbers = {"probation": window.version, **analysis.as_dict()}
    if analysis.verdict is Verdict.FAIL:
        return RollBack(window.version, window.previous,
                        f"probation: version {window.version} is worse than version "
                        f"{window.previous}: {analysis.message}", numbers=analysis.as_dict())
    left = window.started + policy.rollback.probation_seconds - now
    if analysis.verdict is Verdict.PASS and left <= 0:
        return PassProbation(window.version, analysis.message, numbers=analysis.as_dict())
    why = _waiting_for(window.current, limits.min_predictions, analysis, limits)
    reason = f"version {window.version}: {analysis.message}"
    if left > 0:
        reason += f"; {left:.0f} s of rollback.probation_seconds left"
    return Wait(st.PROBATION, why, reason, numbers=numbers)


def _waiting_for(arm: ArmStats, needed: int, analysis: Analysis, limits: RolloutPolicy) -> str:
    if arm.predictions < needed:
        return st.WAITING_FOR_PREDICTIONS
    if analysis.verdict is Verdict.INCONCLUSIVE and arm.labels < max(limits.min_labels, 2):
        return st.WAITING_FOR_LABELS
    if analysis.verdict is Verdict.INCONCLUSIVE:
        return st.WAITING_FOR_PREDICTIONS  # e.g. an error rate not yet clear either way
    return st.OBSERVING


# 4. retrain triggers ------------------------------------------------------------------

def _retrain(observed: Observed, policy: Policy, now: float) -> list[Action]:
    fired = [*watch(observed, policy, now).fired, *observed.watched]
    cron = policy.triggers.schedule
    if cron and schedule_due(cron, observed.last_schedule, now):
        fired.append(Trigger(TriggerKind.SCHEDULE, f"schedule {cron!r}", ts=now))
    actions: list[Action] = [Fire(trigger) for trigger in fired]
    asked = [t for t in observed.triggers if t.action is TriggerAction.RETRAIN] + fired
    if not asked:
        return actions
    first, also = asked[0], tuple(asked[1:])
    state = observed.registry
    admitted, why = admit(first, observed.retrains, policy.triggers, now)
    if not admitted:
        actions.append(SkipTrigger(first, why, also=also))
    elif state.rollout is not None:
        actions.append(SkipTrigger(first, f"version {state.rollout.version} is rolling out; "
                                          "one rollout at a time", also=also))
    elif observed.retraining is not None:
        running = observed.retraining
        actions.append(SkipTrigger(first, f"a retrain is running ({running.trigger.kind.value}: "
                                          f"{running.trigger.reason}); one at a time",
                                   also=also))
    elif policy.triggers.github_repo is not None:
        actions.append(Dispatch(first, policy.triggers.github_repo, also=also))
    else:
        actions.append(StartRetrain(first, also=also))
    return actions


# 5. rollout ---------------------------------------------------------------------------

def ready_candidate(state: RegistryState) -> int | None:
    """The newest candidate that passed its gate after the champion was made."""
    champion = state.version(state.champion) if state.champion is not None else None
    for info in sorted(state.versions, key=lambda v: v.version, reverse=True):
        if info.state != State.CANDIDATE or not (info.gate and info.gate.get("passed")):
            continue
        if champion is not None and info.version < champion.version:
            return None
        return info.version
    return None


def _start(state: RegistryState, version: int, policy: Policy, now: float) -> Action:
    if state.champion is None:
        return Promote(version, "first champion: gate passed")
    rollout = policy.rollout
    spec = (RolloutSpec(version=version, mode="shadow", weight=0.0, step=0, started_at=now)
            if rollout.shadow else
            RolloutSpec(version=version, mode="canary", weight=rollout.steps[0], step=0,
                        started_at=now))
    return StartRollout(spec, state.champion)


def _advance(state: RegistryState, window: RolloutWindow | None, policy: Policy,
             now: float) -> Action:
    spec = state.rollout
    assert spec is not None
    if state.champion is None or window is None:
        return AbortRollout(spec, "no champion to compare with", reject=False)
    limits = policy.rollout
    minimum = limits.shadow_min_predictions if spec.mode == "shadow" else None
    analysis = assess(window.challenger, window.champion, limits,
                      primary=policy.metric.primary, task=policy.model.task.value,
                      min_predictions=minimum)
    numbers = {"rollout": spec_dict(spec), **analysis.as_dict()}
    steps = limits.steps
    if analysis.verdict is Verdict.PASS:
        if spec.mode == "shadow" or spec.step + 1 < len(steps):
            step = 0 if spec.mode == "shadow" else spec.step + 1
            following = replace(spec, mode="canary", weight=steps[step], step=step,
                                started_at=now)
            return SetStep(spec, following, analysis.message, numbers=numbers)
        return Promote(spec.version, f"canary passed all {len(steps)} steps: "
                                     f"{analysis.message}", rollout=spec, numbers=numbers)
    left = spec.started_at + limits.step_timeout_seconds - now
    if analysis.verdict is Verdict.FAIL:
        return AbortRollout(spec, analysis.message, numbers=numbers)
    if left <= 0:
        return AbortRollout(spec, f"inconclusive until the step deadline: {analysis.message}",
                            numbers=numbers)
    needed = minimum if minimum is not None else limits.min_predictions
    return Wait(st.ROLLOUT, _waiting_for(window.challenger, needed, analysis, limits),
                f"{describe_rollout(spec)}: {analysis.message}; {left:.0f} s to the step "
                "deadline", numbers=numbers)
