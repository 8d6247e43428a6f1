"""One reconcile pass at a time, against a real MLflow registry and a real store."""

from __future__ import annotations

import time

import pytest

from tests.conftest import use_trained, write_project
from tests.control.traffic import serve
from tether.control.controller import Controller
from tether.control.triggers import Action, Trigger, TriggerKind
from tether.project import Project
from tether.registry import RolloutSpec, State
from tether.training import retrain


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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


def test_canary_walks_every_step_then_promotes(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    pushes: list[int] = []
    controller = Controller(project, push=lambda: pushes.append(1))
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=time.time() - 1), "canary")
    assert controller.tick() == []  # no traffic yet: inconclusive, waits
    serve(project, 1, "champion", 600, seed=1)
    serve(project, 2, "canary", 200, seed=2)
    done = controller.tick()
    assert any("now canary step 1: 50% of traffic to version 2" in line for line in done)
    spec = project.registry.state().rollout
    assert spec is not None and (spec.step, spec.weight) == (1, 0.5)
    serve(project, 1, "champion", 300, seed=3)
    serve(project, 2, "canary", 300, seed=4)
    done = controller.tick()
    assert "promoted version 2" in done
    state = project.registry.state()
    assert (state.champion, state.previous, state.challenger, state.rollout) == (2, 1, None, None)
    assert kinds(project)[-3:] == ["rollout_step", "rollout_step", "promoted"]
    step = project.store.events(project.model_name, kinds=["rollout_step"])[0]
    assert step.data["verdict"] == "pass"
    assert step.data["challenger"]["predictions"] == 200
    assert len(pushes) == 2


def test_canary_that_fails_on_live_traffic_is_rejected(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=time.time() - 1), "canary")
    serve(project, 1, "champion", 400, seed=1)
    serve(project, 2, "canary", 300, seed=2, invert=True)
    done = Controller(project).tick()
    assert any("aborted" in line and "worse by more than max_metric_drop" in line
               for line in done)
    state = project.registry.state()
    assert (state.champion, state.challenger, state.rollout) == (1, None, None)
    info = state.version(2)
    assert info is not None and info.state == State.REJECTED
    assert "roc_auc" in info.reason
    aborted = project.store.events(project.model_name, kinds=["rollout_aborted"])[-1]
    assert aborted.data["ci_upper"] < -0.02


def test_crashing_canary_is_rejected_on_error_rate(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=time.time() - 1), "canary")
    serve(project, 1, "champion", 300, seed=1)
    serve(project, 2, "canary", 200, seed=2, error_rate=0.3)
    done = Controller(project).tick()
    assert any("error rate" in line and "aborted" in line for line in done)
    assert project.registry.state().version(2).state == State.REJECTED  # type: ignore[union-attr]


def test_inconclusive_step_aborts_at_its_deadline(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    clock = Clock(1000.0)
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                               started_at=1000.0), "canary")
    controller = Controller(project, clock=clock)
    serve(project, 2, "canary", 20, seed=2)
    clock.now = 1200.0
    assert controller.tick() == []
    assert project.registry.state().rollout is not None
    clock.now = 1301.0
    done = controller.tick()
    assert any("inconclusive until the step deadline" in line for line in done)
    assert project.registry.state().version(2).state == State.REJECTED  # type: ignore[union-attr]


def test_probation_rolls_back_a_champion_worse_than_the_previous(
        champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    serve(project, 1, "champion", 400, seed=1)
    from tether import lifecycle

    lifecycle.promote(project, 2, "hot fix")
    serve(project, 2, "champion", 300, seed=2, invert=True)
    done = Controller(project).tick()
    assert any(line.startswith("rolled back version 2 to 1: probation") for line in done)
    state = project.registry.state()
    assert state.champion == 1
    assert state.version(2).state == State.ROLLED_BACK  # type: ignore[union-attr]
    assert kinds(project)[-1] == "rolled_back"
    rolled = project.store.events(project.model_name, kinds=["rolled_back"])[-1]
    assert rolled.data["to"] == 1 and rolled.data["verdict"] == "fail"
    assert rolled.data["ci_upper"] < -0.02


def test_probation_passes_a_good_champion(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    serve(project, 1, "champion", 300, seed=1)
    from tether import lifecycle

    lifecycle.promote(project, 2, "better")
    serve(project, 2, "champion", 300, seed=2)
    clock = Clock(project.store.events(project.model_name)[-1].ts + 10)
    controller = Controller(project, clock=clock)
    assert controller.tick() == []
    clock.now += 400
    assert controller.tick() == ["probation of version 2 passed"]
    assert project.registry.state().champion == 2


def test_trigger_retrains_gates_and_starts_a_canary(fast_policy: Project) -> None:
    project = fast_policy
    retrain(project)
    project.registry.promote(1, "first")
    controller = Controller(project)
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "ModelMetricBelowFloor"))
    done = controller.tick()
    assert done[0] == "trained version 2; gate passed"
    assert done[1] == "rollout started: canary step 0: 10% of traffic to version 2"
    state = project.registry.state()
    assert state.rollout is not None and state.rollout.version == 2
    assert kinds(project) == ["trained", "trigger", "retrain_started", "trained",
                              "gate_passed", "rollout_started"]
    # a second trigger during the cool-down is recorded and skipped
    controller.submit(Trigger(TriggerKind.DRIFT, "drift share 0.7"))
    done = controller.tick()
    assert done[0].startswith("skipped drift: cool-down")
    assert kinds(project)[-1] == "trigger_skipped"


def test_rollback_action_aborts_a_rollout_or_rolls_back(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    controller = Controller(project)
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "CanaryErrorRate",
                              action=Action.ROLLBACK))
    assert controller.tick() == ["rollback skipped: version 1 is champion and there is no "
                                 "previous version to roll back to; pass --to VERSION to "
                                 "choose one"]
    project.registry.promote(2, "v2")
    controller.submit(Trigger(TriggerKind.ALERTMANAGER, "HighErrorRate",
                              action=Action.ROLLBACK))
    assert controller.tick()[0].startswith("rolled back version 2 to 1")
    assert project.registry.state().champion == 1


def test_only_one_controller_acts(champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    first, second = Controller(project, owner="a"), Controller(project, owner="b")
    first.tick()
    assert second.tick() == ["standby: a holds the controller lock"]


def test_interrupted_rollout_is_repaired_on_the_next_pass(
        champion_and_candidate: Project) -> None:
    project = champion_and_candidate
    project.registry.set_state(2, State.CANARY, "canary")
    project.registry.client.set_registered_model_alias(project.model_name, "challenger", "2")
    done = Controller(project).tick()
    assert done[0].startswith("repaired: challenger alias and rollout cleared")
    state = project.registry.state()
    assert state.problems == []
    assert state.challenger is None and state.champion == 1


def test_shadow_phase_hands_over_to_the_first_canary_step(
        champion_and_candidate: Project, project_dir) -> None:  # type: ignore[no-untyped-def]
    write_project(project_dir, **{"rollout.shadow": True, "rollout.shadow_min_predictions": 150,
                                  "rollout.steps": [0.1, 0.5], "rollout.min_labels": 100})
    project = Project.open(project_dir / "tether.yaml")
    controller = Controller(project)
    controller.submit(Trigger(TriggerKind.MANUAL, "shadow first"))
    # the manual retrain (v3) passes its gate and starts in shadow, taking no traffic
    done = controller.tick()
    assert done[-1] == "rollout started: shadow: version 3 scores a copy of live traffic"
    spec = project.registry.state().rollout
    assert spec is not None and (spec.mode, spec.weight) == ("shadow", 0.0)
    serve(project, 1, "champion", 300, seed=1)
    serve(project, 3, "shadow", 200, seed=1)
    done = controller.tick()
    assert done[0].endswith("now canary step 0: 10% of traffic to version 3")
    spec = project.registry.state().rollout
    assert spec is not None and (spec.mode, spec.weight, spec.step) == ("canary", 0.1, 0)
