"""Registry conventions and repair after an interrupted write, on a real MLflow registry.

These call the Registry's plans directly (no lease); tests/test_lifecycle.py runs them as
transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import use_trained
from tether.errors import InvalidTransition, NothingToRollBack, VersionNotFound
from tether.project import Project
from tether.registry import CHALLENGER, CHAMPION, PREVIOUS, ROLLOUT_TAG, RolloutSpec, State
from tether.training import retrain


@pytest.fixture
def two_versions(project_dir: Path, trained_template: Path) -> Project:
    use_trained(project_dir, trained_template)
    project = Project.open(project_dir / "tether.yaml")
    project.registry.promote(1, "first")
    return project


def test_promote_moves_previous_and_tags(two_versions: Project) -> None:
    registry = two_versions.registry
    assert registry.promote(2, "better") == 1
    state = registry.state()
    assert (state.champion, state.previous, state.challenger) == (2, 1, None)
    assert state.version(1).state == State.RETIRED  # type: ignore[union-attr]
    assert state.version(2).state == State.CHAMPION  # type: ignore[union-attr]
    assert state.problems == []


def test_rollout_routes_one_challenger_at_a_time(two_versions: Project) -> None:
    registry = two_versions.registry
    retrain(two_versions)
    registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.05), "canary 5%")
    state = registry.state()
    assert state.challenger == 2 and state.rollout is not None and state.rollout.weight == 0.05
    with pytest.raises(InvalidTransition, match="only one rollout at a time"):
        registry.start_rollout(RolloutSpec(version=3, mode="canary", weight=0.05), "again")
    registry.update_rollout(RolloutSpec(version=2, mode="canary", weight=0.25, step=1), "step")
    assert registry.state().rollout.weight == 0.25  # type: ignore[union-attr]
    assert registry.stop_rollout(State.REJECTED, "error rate 0.2 > 0.01") == 2
    state = registry.state()
    assert (state.challenger, state.rollout, state.champion) == (None, None, 1)
    assert state.version(2).state == State.REJECTED  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition, match="rejected"):
        registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.05), "retry")


def test_promoting_the_challenger_clears_the_rollout(two_versions: Project) -> None:
    registry = two_versions.registry
    registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.5), "canary")
    registry.promote(2, "canary passed")
    state = registry.state()
    assert (state.champion, state.challenger, state.rollout, state.previous) == (2, None, None, 1)


def test_rollback_to_a_named_version(two_versions: Project) -> None:
    registry = two_versions.registry
    retrain(two_versions)
    registry.promote(2, "v2")
    registry.promote(3, "v3")
    assert registry.rollback("bad v3", to=1) == (3, 1)
    state = registry.state()
    assert (state.champion, state.previous) == (1, None)
    assert state.version(3).state == State.ROLLED_BACK  # type: ignore[union-attr]
    with pytest.raises(NothingToRollBack):
        registry.rollback("again")
    with pytest.raises(VersionNotFound):
        registry.rollback("nowhere", to=9)


def test_crash_after_alias_switch_is_repaired(two_versions: Project) -> None:
    """promote() of a version that passed its gate died after moving the champion alias,
    before writing the tags: the promotion is completed."""
    registry = two_versions.registry
    registry.set_gate(2, {"passed": True})
    client = registry.client
    client.set_registered_model_alias("loan-default", PREVIOUS, "1")
    client.set_registered_model_alias("loan-default", CHAMPION, "2")
    problems = registry.state().problems
    assert any("alias champion -> 2 but its state is candidate" in p for p in problems)
    assert any("version 1 is tagged champion" in p for p in problems)
    fixed = registry.repair()
    assert fixed
    state = registry.state()
    assert state.problems == []
    assert state.champion == 2
    assert state.version(1).state == State.RETIRED  # type: ignore[union-attr]


def test_crash_between_challenger_alias_and_rollout_tag_is_repaired(
        two_versions: Project) -> None:
    """start_rollout() died after the alias, before the routing tag: nobody routes to it."""
    registry = two_versions.registry
    registry.set_state(2, State.CANARY, "canary 5%")
    registry.client.set_registered_model_alias("loan-default", CHALLENGER, "2")
    assert any("no rollout routes to it" in p for p in registry.state().problems)
    registry.repair()
    state = registry.state()
    assert state.problems == []
    assert (state.challenger, state.rollout, state.champion) == (None, None, 1)
    assert state.version(2).state == State.CANDIDATE  # type: ignore[union-attr]


def test_rollout_naming_the_champion_is_repaired(two_versions: Project) -> None:
    registry = two_versions.registry
    registry.client.set_registered_model_tag(
        "loan-default", ROLLOUT_TAG, RolloutSpec(version=1, mode="canary", weight=0.5).to_json())
    registry.client.set_registered_model_alias("loan-default", CHALLENGER, "1")
    assert any("routes to the champion" in p for p in registry.state().problems)
    registry.repair()
    state = registry.state()
    assert state.problems == [] and state.champion == 1 and state.rollout is None
    assert state.version(1).state == State.CHAMPION  # type: ignore[union-attr]


class Halves:
    """Not an sklearn estimator: logged and loaded through MLflow's pyfunc flavor."""

    def predict(self, frame):  # type: ignore[no-untyped-def]
        return (frame["x"] > 0.5).astype(int).to_numpy()


def test_a_model_that_is_not_sklearn_is_logged_and_loaded_through_pyfunc(
        project_dir: Path) -> None:
    import pandas as pd

    project = Project.open(project_dir / "tether.yaml")
    features = pd.DataFrame({"x": [0.1, 0.9, 0.4, 0.7]})
    _, number = project.registry.log_candidate(Halves(), features=features, params={},
                                               metrics={}, artifacts={}, files={},
                                               reason="pyfunc")
    loaded = project.registry.load_model(number)
    assert loaded.predict_proba is None and loaded.columns[0].name == "x"
    assert loaded.predict(features).tolist() == [0, 1, 0, 1]
