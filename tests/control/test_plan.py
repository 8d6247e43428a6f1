"""plan(observed, policy, now) -> actions: every decision of the controller, without a
registry, a store or a clock. Each test is an observed snapshot, one plan, the actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.control.observed import (
    NOW,
    arm,
    canary,
    on_probation,
    policy,
    registry,
    rolling,
    serving,
    snapshot,
    status,
    version,
)
from tether.config import Policy
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
)
from tether.control.apply import Applied
from tether.control.conditions import conditions
from tether.control.observe import Observed, RetrainJob
from tether.control.plan import plan
from tether.control.status import ControllerStatus
from tether.control.triggers import Trigger, TriggerAction, TriggerKind
from tether.monitoring.live import MetricEstimate
from tether.registry import Evidence

POLICY = policy(**{
    "rollout.steps": [0.1, 0.5], "rollout.min_predictions": 150, "rollout.min_labels": 100,
    "rollout.step_timeout_seconds": 300, "rollback.probation_seconds": 300,
    "rollback.probation_min_predictions": 150, "triggers.cooldown_seconds": 600,
    "triggers.max_retrains_per_day": 3, "triggers.metric_floor": 0.7,
    "triggers.drift_consecutive": 3,
})


def decide(observed: Observed, chosen: Policy = POLICY, now: float = NOW) -> list[Action]:
    """The plan, without the retention policy's hourly prune."""
    return [a for a in plan(observed, chosen, now) if not isinstance(a, Prune)]


def only(actions: list[Action], kind: type) -> Action:
    found = [a for a in actions if isinstance(a, kind)]
    assert len(found) == 1, actions
    return found[0]


# rollout --------------------------------------------------------------------------------

def test_a_canary_without_enough_predictions_waits_for_them() -> None:
    observed = rolling(canary(0), arm(2, "canary", 40), arm(1, "champion", 400))
    (wait,) = decide(observed)
    assert isinstance(wait, Wait)
    assert (wait.subject, wait.why) == (st.ROLLOUT, st.WAITING_FOR_PREDICTIONS)
    assert "predictions 40 < min_predictions 150" in wait.reason


def test_a_canary_with_predictions_but_too_few_labels_waits_for_labels() -> None:
    observed = rolling(canary(0), arm(2, "canary", 300, labels=20), arm(1, "champion", 600))
    (wait,) = decide(observed)
    assert isinstance(wait, Wait) and wait.why == st.WAITING_FOR_LABELS
    assert "labels 20 < min_labels 100" in wait.reason


def test_a_healthy_canary_step_moves_to_the_next_weight() -> None:
    spec = canary(0)
    observed = rolling(spec, arm(2, "canary", 300, seed=2), arm(1, "champion", 600, seed=1))
    (step,) = decide(observed)
    assert isinstance(step, SetStep)
    assert step.current == spec
    assert (step.following.step, step.following.weight, step.following.started_at) == (
        1, 0.5, NOW)
    assert step.numbers["verdict"] == "pass" and step.numbers["rollout"]["step"] == 0


def test_the_last_canary_step_promotes() -> None:
    observed = rolling(canary(1), arm(2, "canary", 300, seed=2), arm(1, "champion", 600, seed=1))
    (promote,) = decide(observed)
    assert isinstance(promote, Promote) and promote.version == 2
    assert promote.reason.startswith("canary passed all 2 steps: ")
    assert promote.rollout == canary(1)


def test_a_canary_worse_on_labels_is_aborted_with_its_numbers() -> None:
    observed = rolling(canary(0), arm(2, "canary", 300, quality=-1.0, seed=2),
                       arm(1, "champion", 600, seed=1))
    (abort,) = decide(observed)
    assert isinstance(abort, AbortRollout) and abort.reject
    assert "worse by more than max_metric_drop 0.02" in abort.reason
    assert abort.numbers["ci_upper"] < -0.02


def test_a_canary_that_fails_its_calls_is_aborted_on_error_rate() -> None:
    observed = rolling(canary(0), arm(2, "canary", 300, errors=60, seed=2),
                       arm(1, "champion", 600, seed=1))
    (abort,) = decide(observed)
    assert isinstance(abort, AbortRollout)
    assert abort.reason.startswith("error rate 0.2000 > max_error_rate 0.0100")


def test_an_inconclusive_step_aborts_at_its_deadline_not_before() -> None:
    spec = canary(0, started=NOW - 299)
    observed = rolling(spec, arm(2, "canary", 20), arm(1, "champion", 400))
    assert isinstance(decide(observed)[0], Wait)
    (abort,) = decide(observed, now=NOW + 1)
    assert isinstance(abort, AbortRollout)
    assert abort.reason.startswith("inconclusive until the step deadline: predictions 20")


def test_a_passing_shadow_hands_over_to_the_first_canary_step() -> None:
    chosen = policy(**{"rollout.shadow": True, "rollout.shadow_min_predictions": 150,
                       "rollout.steps": [0.1, 0.5], "rollout.min_labels": 100})
    observed = rolling(canary(0, mode="shadow"), arm(2, "shadow", 200, seed=2),
                       arm(1, "champion", 300, seed=1))
    (step,) = decide(observed, chosen)
    assert isinstance(step, SetStep)
    assert (step.following.mode, step.following.weight, step.following.step) == (
        "canary", 0.1, 0)


def test_the_newest_gated_candidate_starts_a_canary() -> None:
    state = registry(version(1, "champion", passed=True, aliases=("champion",)),
                     version(2, "candidate", passed=True), version(3, "candidate", passed=True),
                     version(4, "candidate", passed=None), champion=1)
    (start,) = decide(Observed(registry=state))
    assert isinstance(start, StartRollout)
    assert (start.rollout.version, start.rollout.mode, start.rollout.weight,
            start.rollout.started_at) == (3, "canary", 0.1, NOW)


def test_a_candidate_gated_by_a_running_retrain_starts_once_the_job_is_over() -> None:
    """The retrain writes the gate's verdict to the registry, then records it in the log:
    a pass in between must not start the rollout, or the log would say the canary
    started before the gate passed."""
    state = registry(version(1, "champion", passed=True, aliases=("champion",)),
                     version(2, "candidate", passed=True), champion=1)
    job = RetrainJob(Trigger(TriggerKind.DRIFT, "drift", ts=NOW - 60), started=NOW - 60)
    assert not [a for a in decide(Observed(registry=state, retraining=job))
                if isinstance(a, StartRollout)]
    (start,) = decide(Observed(registry=state, last_retrain=replace(
        job, finished=NOW - 1, version=2, gate_passed=True)))
    assert isinstance(start, StartRollout) and start.rollout.version == 2


def test_the_first_gated_candidate_becomes_champion() -> None:
    state = registry(version(1, "candidate", passed=True))
    (promote,) = decide(Observed(registry=state))
    assert promote == Promote(1, "first champion: gate passed")


def test_a_rejected_or_ungated_candidate_never_rolls_out() -> None:
    state = registry(version(1, "champion", passed=True, aliases=("champion",)),
                     version(2, "rejected", passed=False), version(3, "candidate"),
                     champion=1)
    assert decide(Observed(registry=state)) == []


# probation ------------------------------------------------------------------------------

def test_a_champion_worse_than_the_previous_one_is_rolled_back_first() -> None:
    waiting = Trigger(TriggerKind.MANUAL, "retrain please", ts=NOW - 5)
    observed = on_probation(arm(2, "champion", 300, quality=-1.0, seed=2),
                            arm(1, "champion", 400, seed=1), started=NOW - 60,
                            triggers=(waiting,))
    (rollback,) = decide(observed)
    assert isinstance(rollback, RollBack) and (rollback.version, rollback.target) == (2, 1)
    assert rollback.reason.startswith("probation: version 2 is worse than version 1: roc_auc")
    assert rollback.numbers["ci_upper"] < -0.02
    assert rollback.trigger is None  # the manual trigger waits for the next pass


def test_probation_never_passes_a_champion_nobody_measured() -> None:
    """Promoted, then no traffic at all: long after probation_seconds it is still open,
    waiting for predictions; `probation_passed` is never recorded for it."""
    observed = on_probation(arm(2, "champion", 0), arm(1, "champion", 400, seed=1),
                            started=NOW - 3600)
    (wait,) = decide(observed)
    assert isinstance(wait, Wait)
    assert (wait.subject, wait.why) == (st.PROBATION, st.WAITING_FOR_PREDICTIONS)
    assert "predictions 0 < min_predictions 150" in wait.reason
    found = conditions(observed, [wait], [Applied(wait)], POLICY, NOW)
    (probation,) = [c for c in found if c.type == st.PROBATION]
    assert (probation.status, probation.reason) == (st.TRUE, st.WAITING_FOR_PREDICTIONS)


def test_probation_passes_a_measured_champion_once_its_time_is_up() -> None:
    current, baseline = arm(2, "champion", 300, seed=2), arm(1, "champion", 400, seed=1)
    (early,) = decide(on_probation(current, baseline, started=NOW - 100))
    assert isinstance(early, Wait) and early.why == st.OBSERVING
    assert "200 s of rollback.probation_seconds left" in early.reason
    (passed,) = decide(on_probation(current, baseline, started=NOW - 301))
    assert isinstance(passed, PassProbation) and passed.version == 2
    assert passed.numbers["verdict"] == "pass"


def test_probation_waits_for_labels_when_predictions_have_none() -> None:
    observed = on_probation(arm(2, "champion", 300, labels=0), arm(1, "champion", 400),
                            started=NOW - 3600)
    (wait,) = decide(observed)
    assert isinstance(wait, Wait) and wait.why == st.WAITING_FOR_LABELS


def test_a_worse_estimate_rolls_back_a_hand_promotion_but_not_a_canaried_one() -> None:
    """No labels yet, and the label-free estimate says the new champion is worse: a
    version promoted by hand is rolled back on it; one promoted by a canary that compared
    it with the same previous version side by side waits for labels (the estimate cannot
    see concept drift, the usual reason the canaried version exists)."""
    current = arm(2, "champion", 300, labels=0, estimated={"roc_auc": 0.71})
    baseline = arm(1, "champion", 400, labels=0, estimated={"roc_auc": 0.77})
    by_hand = on_probation(current, baseline, started=NOW - 10)
    (rollback,) = decide(by_hand)
    assert isinstance(rollback, RollBack) and (rollback.version, rollback.target) == (2, 1)
    assert by_hand.probation is not None
    canaried = replace(by_hand, probation=replace(by_hand.probation, canaried=True))
    (wait,) = decide(canaried)
    assert isinstance(wait, Wait) and wait.why == st.WAITING_FOR_LABELS, wait
    assert "waiting for 100 labels per arm" in wait.reason


# triggers -------------------------------------------------------------------------------

def asked(kind: TriggerKind = TriggerKind.ALERTMANAGER, reason: str = "ModelMetricBelowFloor",
          action: TriggerAction = TriggerAction.RETRAIN) -> Trigger:
    return Trigger(kind, reason, action=action, ts=NOW - 1)


def test_an_admitted_trigger_starts_a_retrain_outside_the_pass() -> None:
    trigger = asked()
    (start,) = decide(serving(triggers=(trigger,)))
    assert start == StartRetrain(trigger)


def test_duplicate_triggers_fold_into_the_first() -> None:
    first, second = asked(), asked(TriggerKind.GITHUB, "accuracy dropped")
    (start,) = decide(serving(triggers=(first, second)))
    assert isinstance(start, StartRetrain) and start.trigger is first
    assert start.also == (second,)


@pytest.mark.parametrize(("observed", "why"), [
    (serving(triggers=(asked(),), retrains=(NOW - 200,)),
     "cool-down: last retrain 200 s ago < cooldown_seconds 600"),
    (serving(triggers=(asked(TriggerKind.MANUAL),), retrains=(NOW - 9e3, NOW - 8e3, NOW - 7e3)),
     "budget: 3 retrains in the last 24 h >= max_retrains_per_day 3"),
    (serving(triggers=(asked(),), retraining=RetrainJob(asked(TriggerKind.DRIFT, "drift"),
                                                         started=NOW - 30)),
     "a retrain is running (drift: drift); one at a time"),
])
def test_a_trigger_that_may_not_act_now_is_skipped_with_its_reason(observed: Observed,
                                                                   why: str) -> None:
    (skip,) = decide(observed)
    assert isinstance(skip, SkipTrigger) and skip.reason == why


def test_a_manual_trigger_skips_the_cool_down_but_not_the_budget() -> None:
    (start,) = decide(serving(triggers=(asked(TriggerKind.MANUAL),), retrains=(NOW - 200,)))
    assert isinstance(start, StartRetrain)


def test_a_trigger_during_a_rollout_waits_for_it_to_end() -> None:
    observed = replace(rolling(canary(0), arm(2, "canary", 40), arm(1, "champion", 400)),
                       triggers=(asked(),))
    skip, wait = decide(observed)
    assert isinstance(skip, SkipTrigger) and isinstance(wait, Wait)
    assert skip.reason == "version 2 is rolling out; one rollout at a time"


def test_a_trigger_is_dispatched_to_ci_when_a_repository_retrains() -> None:
    chosen = policy(**{"triggers.github_repo": "acme/models"})
    (dispatch,) = decide(serving(triggers=(asked(),)), chosen)
    assert isinstance(dispatch, Dispatch) and dispatch.repo == "acme/models"


def test_an_asked_rollback_aborts_a_rollout_first() -> None:
    trigger = asked(action=TriggerAction.ROLLBACK, reason="CanaryErrorRate")
    observed = replace(rolling(canary(1), arm(2, "canary", 300), arm(1, "champion", 600)),
                       triggers=(trigger,))
    (abort,) = decide(observed)
    assert isinstance(abort, AbortRollout) and abort.trigger is trigger
    assert abort.reason == "alertmanager: CanaryErrorRate"


def test_an_asked_rollback_puts_previous_back_or_says_why_it_cannot() -> None:
    trigger = asked(action=TriggerAction.ROLLBACK, reason="HighErrorRate")
    (skip,) = decide(serving(triggers=(trigger,)))
    assert isinstance(skip, SkipTrigger)
    assert skip.reason == ("version 1 is champion and there is no previous version to roll "
                           "back to; pass --to VERSION to choose one")
    state = registry(version(1, "retired", aliases=("previous",)),
                     version(2, "champion", aliases=("champion",)), champion=2, previous=1)
    (rollback,) = decide(Observed(registry=state, triggers=(trigger,)))
    assert (type(rollback), rollback.version, rollback.target) == (RollBack, 2, 1)


def test_an_asked_rollback_about_what_no_longer_serves_is_skipped() -> None:
    """A rate over minutes outlives the canary it measured: an alert naming a canary that
    is over, or a version that no longer serves, never rolls back today's champion."""
    state = registry(version(1, "retired", aliases=("previous",)),
                     version(2, "champion", aliases=("champion",)), champion=2, previous=1)

    def alert(**labels: str) -> Trigger:
        return Trigger(TriggerKind.ALERTMANAGER, "TetherCanaryLatencyHigh",
                       action=TriggerAction.ROLLBACK, ts=NOW - 1,
                       data={"labels": {"alertname": "TetherCanaryLatencyHigh", **labels}})

    (over,) = decide(Observed(registry=state, triggers=(alert(route="canary", version="2"),)))
    assert isinstance(over, SkipTrigger)
    assert over.reason == "about the canary of version 2, and no rollout is running"
    (gone,) = decide(Observed(registry=state,
                              triggers=(alert(route="champion", version="1"),)))
    assert isinstance(gone, SkipTrigger)
    assert gone.reason == "about version 1, which no longer serves (champion: version 2)"
    (current,) = decide(Observed(registry=state,
                                 triggers=(alert(route="champion", version="2"),)))
    assert (type(current), current.version, current.target) == (RollBack, 2, 1)

    running = rolling(canary(0, number=3), arm(3, "canary", 300), arm(2, "champion", 600))
    older = only(decide(replace(running, triggers=(alert(route="canary", version="2"),))),
                 SkipTrigger)
    assert isinstance(older, SkipTrigger)
    assert older.reason == "about the canary of version 2; version 3 rolls out now"
    (abort,) = decide(replace(running, triggers=(alert(route="canary", version="3"),)))
    assert isinstance(abort, AbortRollout) and abort.rollout.version == 3


def test_another_watchers_trigger_fires_and_retrains() -> None:
    """A watcher that keeps its own edges (a federated site's drift) fires as it comes."""
    site = Trigger(TriggerKind.DRIFT, "site hospital_01: drift share 0.60 > 0.50",
                   data={"site": "hospital_01"}, ts=NOW)
    fire, start = decide(serving(watched=(site,)))
    assert fire == Fire(site) and start == StartRetrain(site)


def test_the_schedule_fires_once_per_cron_tick() -> None:
    chosen = policy(**{"triggers.schedule": "0 3 * * *"})
    at_three = 1_700_020_800.0  # 2023-11-15 03:00 UTC
    fire, start = decide(serving(last_schedule=at_three - 86_400), chosen, now=at_three + 30)
    assert isinstance(fire, Fire) and fire.trigger.kind is TriggerKind.SCHEDULE
    assert isinstance(start, StartRetrain) and start.trigger is fire.trigger
    assert decide(serving(last_schedule=at_three + 30), chosen, now=at_three + 90) == []


def test_a_registry_with_problems_is_repaired_before_anything_else() -> None:
    state = registry(version(1, "champion", aliases=("champion",)),
                     version(2, "canary", aliases=("challenger",)), champion=1, challenger=2)
    actions = plan(Observed(registry=state, triggers=(asked(),)), POLICY, NOW)
    assert actions == [Repair(("alias challenger -> 2 but no rollout routes to it",
                               "version 2 is tagged canary but no rollout routes to it"))]


def test_a_version_servers_cannot_load_is_never_repaired_into_serving() -> None:
    """Version 1 is tagged champion but no alias names it: a repair would point alias
    champion at it, unless servers reported they cannot load it. Then no repair is
    planned: a person decides, the status says so, and the rest of the pass goes on."""
    state = registry(version(1, "champion"))
    assert decide(Observed(registry=state)) == [Repair((
        "no champion alias, but version(s) [1] are tagged champion",))]
    unloadable = Observed(registry=state, triggers=(asked(),),
                          evidence=Evidence(unloadable={1: "EOFError: pickle truncated"}))
    actions = decide(unloadable)
    assert not any(isinstance(a, Repair) for a in actions)
    assert isinstance(only(actions, StartRetrain), StartRetrain)
    (consistent,) = [c for c in conditions(unloadable, actions, [], POLICY, NOW)
                     if c.type == st.REGISTRY_CONSISTENT]
    assert (consistent.status, consistent.reason) == (st.FALSE, st.NEEDS_A_PERSON)
    assert consistent.message == ("no champion alias, but version(s) [1] are tagged "
                                  "champion; none is fit to serve")


def test_the_retention_policy_runs_once_per_interval() -> None:
    assert Prune(NOW) in plan(serving(previous=status(pruned_at=None)), POLICY, NOW)
    assert Prune(NOW) in plan(serving(previous=status(pruned_at=NOW - 3600)), POLICY, NOW)
    assert not any(isinstance(a, Prune)
                   for a in plan(serving(previous=status(pruned_at=NOW - 60)), POLICY, NOW))


def test_the_plan_is_pure() -> None:
    observed = rolling(canary(0), arm(2, "canary", 300, seed=2), arm(1, "champion", 600, seed=1))
    assert plan(observed, POLICY, NOW) == plan(observed, POLICY, NOW)


# the watchers ---------------------------------------------------------------------------

def passes(snapshots: list, chosen: Policy = POLICY) -> list[list[Action]]:  # type: ignore[type-arg]
    """One pass per snapshot (None: the champion's picture is unavailable), each seeing
    the status the one before it left, as a running controller does."""
    previous = status()
    planned = []
    for index, snap in enumerate(snapshots):
        now = NOW + 10 * index
        observed = serving(champion=snap, watching=True, previous=previous,
                           monitoring_error=None if snap is not None else "no profile.json")
        actions = [a for a in plan(observed, chosen, now) if not isinstance(a, Prune)]
        planned.append(actions)
        previous = previous.with_conditions(
            conditions(observed, actions, [Applied(a) for a in actions], chosen, now),
            ts=now, pruned_at=now)
    return planned


def fired(actions: list[Action]) -> list[TriggerKind]:
    return [a.trigger.kind for a in actions if isinstance(a, Fire)]


def test_drift_fires_once_after_its_consecutive_checks() -> None:
    shares = [0.2, 0.7, 0.7, 0.7, 0.7, 0.1, 0.7, 0.7, 0.7]
    planned = passes([snapshot(share=s) for s in shares])
    assert [fired(actions) for actions in planned] == [
        [], [], [], [TriggerKind.DRIFT], [], [], [], [], [TriggerKind.DRIFT]]
    fire = planned[3][0]
    assert isinstance(fire, Fire)
    assert fire.trigger.reason == "drift share 0.70 > 0.50 for 3 consecutive checks"
    assert isinstance(planned[3][1], StartRetrain)


def test_a_metric_below_its_floor_fires_on_its_rising_edge_only() -> None:
    low, fine = (0.6, 0.55, 0.66), (0.8, 0.75, 0.85)
    planned = passes([snapshot(roc_auc=fine), snapshot(roc_auc=low), snapshot(roc_auc=low),
                      snapshot(roc_auc=low, labels=20), snapshot(roc_auc=low)])
    assert [fired(actions) for actions in planned] == [
        [], [TriggerKind.METRIC], [], [], [TriggerKind.METRIC]]
    fire = planned[1][0]
    assert isinstance(fire, Fire)
    assert fire.trigger.reason == (
        "live roc_auc 0.6000 (CI 0.5500-0.6600, 500 labels) worse than floor 0.7000; live "
        "roc_auc 0.6000 (CI 0.5500-0.6600, 500 labels) is more than metric_drop 0.0500 worse "
        "than the champion's baseline 0.8000")


def test_a_metric_hovering_at_its_limit_does_not_fire_at_every_crossing() -> None:
    """Past the limit on the interval's optimistic end: True. Back to False only when
    the point value is within the limits again; in between, the last status holds."""
    fine, low, hover = (0.8, 0.75, 0.85), (0.6, 0.55, 0.66), (0.74, 0.70, 0.78)
    planned = passes([snapshot(roc_auc=m) for m in (fine, low, hover, low, hover, fine, hover,
                                                    low)])
    assert [fired(actions) for actions in planned] == [
        [], [TriggerKind.METRIC], [], [], [], [], [], [TriggerKind.METRIC]]


def test_a_new_champion_starts_with_fresh_edges() -> None:
    degraded = st.Condition(st.METRIC_DEGRADED, st.TRUE, st.BELOW_FLOOR, "v1 below", NOW - 60,
                            version=1)
    state = registry(version(1, "retired", aliases=("previous",)),
                     version(2, "champion", passed=True, aliases=("champion",)),
                     champion=2, previous=1)
    observed = Observed(registry=state, watching=True, previous=status(degraded),
                        champion=snapshot(roc_auc=(0.6, 0.55, 0.66), number=2))
    assert fired(decide(observed)) == [TriggerKind.METRIC]
    same = replace(observed, previous=status(replace(degraded, version=2)))
    assert fired(decide(same)) == []


def test_the_metric_watcher_follows_the_metric_direction() -> None:
    """rmse: lower is better, so the limit is a ceiling and the interval's lower end is
    the optimistic one."""
    chosen = policy(**{"model.task": "regression", "model.target": "y",
                       "metric.primary": "rmse", "metric.direction": "minimize",
                       "gate.floors": {}, "triggers.metric_floor": 60.0,
                       "triggers.metric_drop": None})
    high = MetricEstimate(70.0, 62.0, 78.0, n=500)
    near = MetricEstimate(61.0, 55.0, 67.0, n=500)
    planned = passes([replace(snapshot(), live={"rmse": estimate})
                      for estimate in (near, high, near)], chosen)
    assert [fired(actions) for actions in planned] == [[], [TriggerKind.METRIC], []]
    fire = planned[1][0]
    assert isinstance(fire, Fire)
    assert fire.trigger.reason == "live rmse 70 (CI 62-78, 500 labels) worse than ceiling 60"
    assert fire.trigger.data["direction"] == "minimize"


def test_a_change_detector_fires_when_it_starts_firing() -> None:
    planned = passes([snapshot(change=False), snapshot(change=True), snapshot(change=True)])
    assert [fired(actions) for actions in planned] == [[], [TriggerKind.CHANGE], []]


def test_the_watchers_hold_their_count_while_the_picture_is_missing() -> None:
    planned = passes([snapshot(share=0.7), snapshot(share=0.7), None, snapshot(share=0.7),
                      snapshot(share=0.7), snapshot(share=0.7)])
    # an unavailable picture is Unknown: the run of checks starts again after it
    assert [fired(actions) for actions in planned] == [[], [], [], [], [], [TriggerKind.DRIFT]]


def test_an_unavailable_picture_is_a_condition_not_a_failed_pass() -> None:
    observed = serving(champion=None, watching=True, monitoring_error="no profile.json")
    found = {c.type: c for c in conditions(observed, [], [], POLICY, NOW)}
    assert (found[st.MONITORING].status, found[st.MONITORING].message) == (
        st.FALSE, "no profile.json")
    assert found[st.HEALTHY].status == st.TRUE
    assert found[st.DRIFT_DETECTED].status == st.UNKNOWN


def test_the_watchers_stand_still_during_a_rollout() -> None:
    held = st.Condition(st.DRIFT_DETECTED, st.TRUE, st.ABOVE_THRESHOLD, "drift", NOW - 50,
                        checks=2)
    observed = rolling(canary(0), arm(2, "canary", 40), arm(1, "champion", 400),
                       watching=True, previous=status(held))
    actions = decide(observed)
    after = observed.previous.with_conditions(  # type: ignore[union-attr]
        conditions(observed, actions, [Applied(a) for a in actions], POLICY, NOW))
    assert after.condition(st.DRIFT_DETECTED) == held
    assert after.condition(st.MONITORING).reason == st.NOT_WATCHING  # type: ignore[union-attr]


def test_an_unchanged_condition_keeps_its_since_across_passes() -> None:
    observed = rolling(canary(0, started=NOW - 100), arm(2, "canary", 300, labels=20),
                       arm(1, "champion", 600))
    first = ControllerStatus.empty("m", "test", NOW).with_conditions(
        conditions(observed, decide(observed), [], POLICY, NOW))
    later = first.with_conditions(conditions(observed, decide(observed, now=NOW + 30), [],
                                             POLICY, NOW + 30))
    rollout = later.condition(st.ROLLOUT)
    assert rollout is not None and rollout.reason == st.WAITING_FOR_LABELS
    assert (rollout.since, rollout.checks) == (NOW, 2)
    assert "170 s to the step deadline" in rollout.message
