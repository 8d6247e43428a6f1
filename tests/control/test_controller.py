"""The controller against a real MLflow registry and a real store: each pass observes,
plans, applies and persists its status. Decisions themselves are tested plan-level in
test_plan.py; these check that they reach the registry, the event log and the status."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import use_trained, write_project
from tests.control.traffic import serve
from tether import lifecycle
from tether.control import status as st
from tether.control.actions import (
    AbortRollout,
    PassProbation,
    Promote,
    Repair,
    RollBack,
    SetStep,
    SkipTrigger,
    StartRetrain,
    StartRollout,
    Wait,
)
from tether.control.clock import ManualClock
from tether.control.controller import Controller
from tether.control.triggers import Trigger, TriggerAction, TriggerKind
from tether.errors import StoreError
from tether.project import Project
from tether.registry import RolloutSpec, State
from tether.training import retrain


@pytest.fixture
def fast_policy(project_dir):  # type: ignore[no-untyped-def]
    write_project(project_dir, **{
        "rollout.steps": [0.1, 0.5], "rollout.min_predictions": 150,
        "rollout.min_labels": 100, "rollout.step_timeout_seconds": 300,
        "rollback.probation_seconds": 300, "rollback.probation_min_predictions": 150,
        "triggers.cooldown_seconds": 600, "triggers.max_retrains_per_day": 3,
    })
    return Project.open(project_dir / "tether.yaml")


@pytest.fixture
def champion_and_candidate(fast_policy: Project, project_dir, trained_template) -> Project:  # type: ignore[no-untyped-def]
    use_trained(project_dir, trained_template)
    project = Project.open(project_dir / "tether.yaml")
    project.registry.promote(1, "first")
    return project


def kinds(project: Project) -> list[str]:
    return [e.kind for e in project.store.events(project.model_name)]


def condition(project: Project, kind: str) -> st.Condition:
    raw = project.store.load_status(project.model_name)
    assert raw is not None
    found = st.ControllerStatus.from_dict(raw).condition(kind)
    assert found is not None
    return found


def test_canary_walks_every_step_then_promotes(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    pushes: list[int] = []
    controller = Controller(project, push=lambda: pushes.append(1))
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=time.time() - 1), "canary")
    first = controller.tick()
    assert first.of(Wait) and not first.of(SetStep)  # no traffic yet: inconclusive, waits
    assert condition(project, st.ROLLOUT).reason == st.WAITING_FOR_PREDICTIONS
    serve(project, 1, "champion", 600, seed=1)
    serve(project, 2, "canary", 200, seed=2)
    (step,) = controller.tick().of(SetStep)
    assert isinstance(step, SetStep) and step.following.weight == 0.5
    spec = project.registry.state().rollout
    assert spec is not None and (spec.step, spec.weight) == (1, 0.5)
    serve(project, 1, "champion", 300, seed=3)
    serve(project, 2, "canary", 300, seed=4)
    assert controller.tick().of(Promote)
    state = project.registry.state()
    assert (state.champion, state.previous, state.challenger, state.rollout) == (2, 1, None, None)
    assert kinds(project)[-3:] == ["rollout_step", "rollout_step", "promoted"]
    step_event = project.store.events(project.model_name, kinds=["rollout_step"])[0]
    assert step_event.data["verdict"] == "pass"
    assert step_event.data["challenger"]["predictions"] == 200
    assert len(pushes) == 2
    assert condition(project, st.ROLLOUT).reason == st.PROMOTED


def test_canary_that_fails_on_live_traffic_is_rejected(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=time.time() - 1), "canary")
    serve(project, 1, "champion", 400, seed=1)
    serve(project, 2, "canary", 300, seed=2, invert=True)
    (abort,) = Controller(project).tick().of(AbortRollout)
    assert isinstance(abort, AbortRollout)
    assert "worse by more than max_metric_drop" in abort.reason
    state = project.registry.state()
    assert (state.champion, state.challenger, state.rollout) == (1, None, None)
    info = state.version(2)
    assert info is not None and info.state == State.REJECTED
    assert "roc_auc" in info.reason
    aborted = project.store.events(project.model_name, kinds=["rollout_aborted"])[-1]
    assert aborted.data["ci_upper"] < -0.02


def test_probation_rolls_back_a_champion_worse_than_the_previous(
        champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    serve(project, 1, "champion", 400, seed=1)
    lifecycle.promote(project, 2, "hot fix")
    serve(project, 2, "champion", 300, seed=2, invert=True)
    (rollback,) = Controller(project).tick().of(RollBack)
    assert isinstance(rollback, RollBack)
    assert rollback.reason.startswith("probation: version 2 is worse than version 1")
    state = project.registry.state()
    assert state.champion == 1
    assert state.version(2).state == State.ROLLED_BACK  # type: ignore[union-attr]
    assert kinds(project)[-1] == "rolled_back"
    rolled = project.store.events(project.model_name, kinds=["rolled_back"])[-1]
    assert rolled.data["to"] == 1 and rolled.data["verdict"] == "fail"
    assert rolled.data["ci_upper"] < -0.02
    assert condition(project, st.PROBATION).reason == st.ROLLED_BACK


def test_probation_waits_for_a_champion_nobody_measured(champion_and_candidate: Project) -> None:
    """Promoted, no traffic, probation_seconds long gone: still on probation, and
    `probation_passed` is never recorded for a version nobody measured."""
    project = champion_and_candidate
    lifecycle.promote(project, 2, "manual promote")
    clock = ManualClock(project.store.events(project.model_name)[-1].ts + 3600)
    controller = Controller(project, clock=clock)
    (wait,) = controller.tick().of(Wait)
    assert isinstance(wait, Wait) and "predictions 0 < min_predictions 150" in wait.reason
    assert "probation_passed" not in kinds(project)
    held = condition(project, st.PROBATION)
    assert (held.status, held.reason) == (st.TRUE, st.WAITING_FOR_PREDICTIONS)
    clock.advance(60)
    controller.tick()
    assert condition(project, st.PROBATION).since == held.since  # unchanged: same since
    serve(project, 1, "champion", 300, seed=1, ts=clock.now - 7200)
    serve(project, 2, "champion", 300, seed=2)
    assert controller.tick().of(PassProbation)
    assert kinds(project)[-1] == "probation_passed"
    assert condition(project, st.PROBATION).reason == st.PASSED


def test_a_retrain_runs_outside_the_pass_and_the_next_pass_rolls_it_out(
        fast_policy: Project) -> None:
    project = fast_policy
    retrain(project)
    project.registry.promote(1, "first")
    controller = Controller(project)
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "ModelMetricBelowFloor"))
    first = controller.tick()
    assert first.of(StartRetrain) and not first.of(StartRollout)
    assert condition(project, st.RETRAINING).status == st.TRUE
    assert controller.worker.join(120)
    (start,) = controller.tick().of(StartRollout)
    assert isinstance(start, StartRollout) and start.version == 2
    state = project.registry.state()
    assert state.rollout is not None and state.rollout.version == 2
    assert kinds(project) == ["trained", "trigger", "retrain_started", "trained",
                              "gate_passed", "rollout_started"]
    assert condition(project, st.RETRAINING).message == "trained version 2; gate passed"
    # a second trigger during the cool-down is recorded and skipped
    controller.submit(Trigger(TriggerKind.DRIFT, "drift share 0.7"))
    (skip,) = controller.tick().of(SkipTrigger)
    assert isinstance(skip, SkipTrigger) and skip.reason.startswith("cool-down")
    assert kinds(project)[-1] == "trigger_skipped"


def test_rollback_trigger_aborts_a_rollout_or_rolls_back(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    controller = Controller(project)
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "CanaryErrorRate",
                              action=TriggerAction.ROLLBACK))
    assert controller.tick().of(SkipTrigger)
    assert kinds(project)[-1] == "rollback_skipped"
    project.registry.promote(2, "v2")
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "HighErrorRate",
                              action=TriggerAction.ROLLBACK))
    (rollback,) = controller.tick().of(RollBack)
    assert isinstance(rollback, RollBack) and (rollback.version, rollback.target) == (2, 1)
    assert project.registry.state().champion == 1
    rolled = project.store.events(project.model_name, kinds=["rolled_back"])[-1]
    assert rolled.data["trigger"]["reason"] == "HighErrorRate"


def test_only_one_controller_acts(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    first, second = Controller(project, owner="a"), Controller(project, owner="b")
    first.tick()
    assert second.tick().lines() == ["standby: a holds the controller lock"]


def test_interrupted_rollout_is_repaired_on_the_next_pass(
        champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    project.registry.set_state(2, State.CANARY, "canary")
    project.registry.client.set_registered_model_alias(project.model_name, "challenger", "2")
    result = Controller(project).tick()
    assert [type(a.action) for a in result.applied] == [Repair]
    assert result.applied[0].detail.startswith("challenger alias and rollout cleared")
    state = project.registry.state()
    assert state.problems == []
    assert state.challenger is None and state.champion == 1
    assert condition(project, st.REGISTRY_CONSISTENT).reason == st.REPAIRED


def test_a_registry_moved_under_a_pass_is_planned_again_not_an_error(
        champion_and_candidate: Project) -> None:
    """A person rolls back by hand while a pass decides to roll back on an alert: the
    pass's write is refused (the routing it observed moved), nothing is written twice,
    no error is recorded, and the alert waits for the next pass, which plans it on the
    registry as it is now."""
    project = champion_and_candidate
    lifecycle.promote(project, 2, "hot fix")
    moved: list[tuple[int, int]] = []

    def person_rolls_back(state, now):  # type: ignore[no-untyped-def]
        if not moved:  # between this pass's read of the registry and its write
            moved.append(lifecycle.rollback(project, "by hand: support tickets"))
        return []

    controller = Controller(project, watchers=[person_rolls_back])
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "HighErrorRate",
                              action=TriggerAction.ROLLBACK))
    first = controller.tick()
    (applied,) = first.applied
    assert isinstance(applied.action, RollBack) and applied.action.version == 2
    assert not applied.ok and applied.error is None
    assert applied.moved is not None and "champion" in applied.moved
    assert "the next pass plans again" in applied.line()
    assert moved == [(2, 1)]
    assert kinds(project).count("rolled_back") == 1  # the person's, not a second one
    assert "controller_error" not in kinds(project)
    assert condition(project, st.HEALTHY).status == st.TRUE
    state = project.registry.state()
    assert (state.champion, state.problems) == (1, [])
    second = controller.tick()
    skipped = [a for a in second.of(SkipTrigger) if isinstance(a, SkipTrigger)]
    assert [a.trigger.reason for a in skipped] == ["HighErrorRate"]
    assert not second.of(RollBack) and project.registry.state().champion == 1
    assert controller.tick().of(SkipTrigger) == []  # answered once


def test_a_restarted_controller_finds_the_status_and_keeps_its_since(
        champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=time.time() - 1), "canary")
    serve(project, 2, "canary", 200, seed=2, label=False)
    clock = ManualClock(time.time())
    Controller(project, owner="a", clock=clock, lock_ttl=1).tick()
    waiting = condition(project, st.ROLLOUT)
    assert (waiting.status, waiting.reason) == (st.TRUE, st.WAITING_FOR_LABELS)
    project.store.release_lock("controller/" + project.model_name, "a")
    clock.advance(30)
    restarted = Controller(project, owner="b", clock=clock)
    restarted.tick()
    again = condition(project, st.ROLLOUT)
    assert (again.reason, again.since, again.checks) == (st.WAITING_FOR_LABELS,
                                                        waiting.since, 2)
    result = lifecycle.status(project)
    assert result.controller is not None and result.controller.owner == "b"


class Pauses(threading.Event):
    """A stop event that remembers how long the loop paused between passes."""

    def __init__(self, lease_wait: float) -> None:
        super().__init__()
        self.lease_wait = lease_wait
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None and timeout != self.lease_wait:
            self.pauses.append(timeout)
        return super().wait(timeout)


def test_a_failing_pass_backs_off_and_is_recorded_once(champion_and_candidate: Project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The same error, pass after pass, is one `controller_error` and one condition; the
    passes back off (0.1 s, 0.2 s, 0.4 s, ...); the recovery is one `controller_recovered`."""
    project = champion_and_candidate
    controller = Controller(project, lock_ttl=30)
    controller.tick()
    real = project.store.prediction_window
    broken = {"on": True}

    def window(*args, **kwargs):  # type: ignore[no-untyped-def]
        if broken["on"]:
            raise StoreError("store sqlite:///x: disk I/O error")
        return real(*args, **kwargs)

    lifecycle.promote(project, 2, "on probation: the pass reads the prediction window")
    monkeypatch.setattr(project.store, "prediction_window", window)
    stop = Pauses(lease_wait=10.0)
    thread = threading.Thread(target=controller.run, args=(stop, 0.05))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(stop.pauses) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stop.pauses[:4] == [0.1, 0.2, 0.4, 0.8]
        errors = project.store.events(project.model_name, kinds=["controller_error"])
        assert len(errors) == 1 and "disk I/O error" in errors[0].reason
        healthy = condition(project, st.HEALTHY)
        assert (healthy.status, healthy.reason) == (st.FALSE, st.PASS_FAILED)
        assert "disk I/O error" in healthy.message
        broken["on"] = False
        while condition(project, st.HEALTHY).status != st.TRUE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert kinds(project).count("controller_error") == 1
    assert kinds(project).count("controller_recovered") == 1
