"""Registry transitions as transactions, on a real MLflow registry and store: writers that
race (threads and processes), decisions on a stale state, a lease held by a writer that
died, a repair that must not bless a version servers cannot load, a registry file that
went missing."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import use_trained
from tests.racing import (
    Job,
    Outcome,
    ProcessRacers,
    add_gated_versions,
    assert_one_story,
    last_event_id,
    race_in_threads,
)
from tether import lifecycle
from tether.cli import app
from tether.errors import RegistryConflict
from tether.project import Project
from tether.registry import RolloutSpec, State
from tether.serving import create_app

runner = CliRunner()


@pytest.fixture
def gated(project_dir: Path, trained_template: Path) -> Project:
    """Versions 1 and 2 trained, 3 to 5 sharing version 1's model; all passed a gate;
    version 1 is champion."""
    use_trained(project_dir, trained_template)
    project = Project.open(project_dir / "tether.yaml")
    for number in (1, 2):
        project.registry.set_gate(number, {"passed": True})
    add_gated_versions(project, 3)
    lifecycle.promote(project, 1, "first")
    return project


def _rounds(project: Project, pick: str, rounds: int, race: object) -> list[Outcome]:
    """Race two jobs per round; check the one story after each."""
    seen: list[Outcome] = []
    for index in range(rounds):
        before = project.registry.state()
        if pick == "rollback" and before.previous is None:
            others = [v.version for v in before.versions if v.version != before.champion]
            lifecycle.promote(project, others[index % len(others)], "set up a previous")
            before = project.registry.state()
        choices = [v.version for v in before.versions
                   if v.version != before.champion and v.state != State.REJECTED]
        a, b = choices[index % len(choices)], choices[(index + 1) % len(choices)]
        jobs: list[Job] = [("promote", a), ("promote", b) if pick == "promote"
                           else ("rollback", None)]
        since = last_event_id(project)
        outcomes = race(jobs)  # type: ignore[operator]
        assert len(outcomes) == 2 and any(o.ok for o in outcomes), outcomes
        for outcome in outcomes:
            assert outcome.ok or outcome.detail.startswith("conflict: "), outcome
            if not outcome.ok:
                assert outcome.detail.endswith("; retry") and "changed while" in outcome.detail
        assert_one_story(project, before, since)
        seen += outcomes
    return seen


def test_two_promotes_at_once_tell_one_story(gated: Project, project_dir: Path) -> None:
    """Without the transaction this ended with two versions tagged champion and a
    `previous` that skipped the lost promotion, in 5 of 6 rounds."""
    config = project_dir / "tether.yaml"
    outcomes = _rounds(gated, "promote", 6, lambda jobs: race_in_threads(config, jobs))
    assert len(outcomes) == 12


def test_a_promote_and_a_rollback_at_once_tell_one_story(gated: Project,
                                                         project_dir: Path) -> None:
    config = project_dir / "tether.yaml"
    _rounds(gated, "rollback", 6, lambda jobs: race_in_threads(config, jobs))


def test_writers_in_separate_processes_tell_one_story(gated: Project,
                                                      project_dir: Path) -> None:
    racers = ProcessRacers(project_dir / "tether.yaml", 2)
    try:
        _rounds(gated, "promote", 2, racers.race)
        _rounds(gated, "rollback", 2, racers.race)
    finally:
        racers.close()


def test_a_decision_on_a_stale_state_writes_nothing_and_says_what_moved(
        gated: Project) -> None:
    project = gated
    read = project.registry.state()
    lifecycle.promote(project, 3, "came first")
    with pytest.raises(RegistryConflict) as caught:
        lifecycle.promote(project, 4, "decided on the old state", expected=read)
    assert str(caught.value) == ("champion and previous changed while promoting version 4 "
                                 "(champion 1 -> 3, previous - -> 1); retry")
    spec = RolloutSpec(version=4, mode="canary", weight=0.1)
    with pytest.raises(RegistryConflict, match="changed while starting the rollout"):
        lifecycle.start_rollout(project, spec, "canary", expected=read)
    with pytest.raises(RegistryConflict, match="changed while rolling back"):
        lifecycle.rollback(project, "on the old state", current=read)
    state = project.registry.state()
    assert (state.champion, state.previous, state.rollout) == (3, 1, None)
    kinds = [e.kind for e in project.store.events(project.model_name)]
    assert kinds.count("promoted") == 2 and "rollout_started" not in kinds


def test_a_projects_registry_takes_the_lease_and_checks_when_called_directly(
        gated: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller may call `project.registry.start_rollout(...)` itself."""
    project = gated
    read = project.registry.state()
    lifecycle.promote(project, 3, "came first")
    spec = RolloutSpec(version=4, mode="canary", weight=0.1)
    with pytest.raises(RegistryConflict, match="champion and previous changed while "
                                               "starting the rollout of version 4"):
        project.registry.start_rollout(spec, "canary", expected=read)
    monkeypatch.setattr(lifecycle, "REGISTRY_WAIT_SECONDS", 0.3)
    assert project.store.acquire_lock(f"registry/{project.model_name}", "someone", 60)
    with pytest.raises(RegistryConflict, match="busy while starting the rollout"):
        project.registry.start_rollout(spec, "canary")
    assert project.registry.state().rollout is None


def test_rollout_transitions_record_their_event_in_the_transaction(gated: Project) -> None:
    project = gated
    spec = RolloutSpec(version=2, mode="canary", weight=0.1, started_at=0.0)
    lifecycle.start_rollout(project, spec, "canary 10%", data={"why": "gate passed"})
    step = RolloutSpec(version=2, mode="canary", weight=0.5, step=1, started_at=1.0)
    lifecycle.update_rollout(project, step, "canary 50%", message="step 0 passed")
    assert lifecycle.stop_rollout(project, State.REJECTED, "error rate 0.2 > 0.01") == 2
    assert lifecycle.stop_rollout(project, State.REJECTED, "nothing rolls out") is None
    events = project.store.events(project.model_name,
                                  kinds=["rollout_started", "rollout_step", "rollout_aborted"])
    assert [(e.kind, e.version, e.reason) for e in events] == [
        ("rollout_started", 2, "canary 10%"), ("rollout_step", 2, "step 0 passed"),
        ("rollout_aborted", 2, "error rate 0.2 > 0.01")]
    assert events[0].data["champion"] == 1 and events[0].data["why"] == "gate passed"
    assert events[1].data["rollout"]["weight"] == 0.5
    assert project.registry.state().version(2).state == State.REJECTED  # type: ignore[union-attr]


def test_a_writer_holding_the_registry_too_long_fails_the_next_with_a_one_line_reason(
        gated: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project = gated
    monkeypatch.setattr(lifecycle, "REGISTRY_WAIT_SECONDS", 0.5)
    lock = f"registry/{project.model_name}"
    assert project.store.acquire_lock(lock, "ci-runner-7 promoting version 5", 60)
    result = runner.invoke(app, ["promote", "--version", "3"])
    assert result.exit_code == RegistryConflict.exit_code == 7
    assert result.output.strip().splitlines() == [
        "error: the registry of loan-default is busy while promoting version 3: "
        "ci-runner-7 promoting version 5 has held it for over 0.5 s; retry"]
    assert project.registry.state().champion == 1


def test_a_writer_that_died_holding_the_registry_delays_the_next_by_its_ttl(
        gated: Project) -> None:
    project = gated
    # a lease nobody will release (a process killed mid-transaction), about to expire
    assert project.store.acquire_lock(f"registry/{project.model_name}", "killed", 0.5)
    assert lifecycle.promote(project, 2, "after the dead writer") == 2
    assert project.registry.state().champion == 2


TOKEN = "t0ken"


@pytest.fixture
def serving(gated: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", TOKEN)
    server = create_app(Project.open(gated.config.path), poll=False,
                        registry=CollectorRegistry())
    with TestClient(server) as client:
        yield client


def _unloadable_version(project: Project, folder: Path) -> int:
    """A version registered out of band whose pickled model was cut short."""
    import mlflow.sklearn

    path = folder / "broken-model"
    mlflow.sklearn.save_model(project.registry.load_model(1).raw, str(path),
                              serialization_format="cloudpickle")
    pickled = path / "model.pkl"
    pickled.write_bytes(pickled.read_bytes()[:100])
    made = project.registry.client.create_model_version(project.model_name, source=str(path))
    return int(made.version)


def test_repair_never_blesses_a_champion_alias_moved_to_a_version_servers_cannot_load(
        gated: Project, serving: TestClient, tmp_path: Path) -> None:
    """/work/shared/cases/repair-blesses-unloadable-champion: the server rightly keeps
    version 1; the registry must say so too."""
    project = gated
    admin = {"Authorization": f"Bearer {TOKEN}"}
    assert serving.post("/admin/reload", headers=admin).status_code == 200
    broken = _unloadable_version(project, tmp_path)
    project.registry.client.set_registered_model_alias(project.model_name, "champion",
                                                       str(broken))  # by hand, out of band
    serving.post("/admin/reload", headers=admin)
    assert serving.get("/version").json()["versions"][0]["version"] == 1

    shown = runner.invoke(app, ["status"])
    assert shown.exit_code == 0, shown.output
    assert f"load failure: servers could not load version {broken}" in shown.output
    assert "UnpicklingError" in shown.output
    assert (f"problem: alias champion -> {broken} but its state is untagged (it never "
            "passed a gate and servers could not load it") in " ".join(shown.output.split())

    repaired = runner.invoke(app, ["status", "--repair", "--json"])
    assert repaired.exit_code == 0, repaired.output
    result = json.loads(repaired.output)
    (failure,) = project.store.events(project.model_name, kinds=["model_load_failed"])
    assert result["repaired"] == [
        f"alias champion back on version 1, the last good champion; version {broken} tagged "
        f"rolled_back (it never passed a gate and servers could not load it "
        f"({failure.data['error']}))"]
    assert (result["champion"], result["previous"], result["problems"]) == (1, None, [])
    states = {v["version"]: v["state"] for v in result["versions"]}
    assert states[1] == "champion" and states[broken] == "rolled_back"
    assert serving.post("/admin/reload", headers=admin).status_code == 200
    assert serving.get("/version").json()["versions"][0]["version"] == 1
    (event,) = project.store.events(project.model_name, kinds=["repaired"])
    assert event.data["fixes"] == result["repaired"]


def test_a_missing_registry_file_is_an_error_naming_it_and_stays_missing(
        project_dir: Path) -> None:
    """/work/shared/cases/sqlite-registry-missing-reads-as-empty."""
    database = project_dir / ".tether" / "mlflow.db"
    shutil.move(database, project_dir / "mlflow.db.away")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 4
    (line,) = result.output.strip().splitlines()
    assert f"the file {database} does not exist" in line and "Traceback" not in line
    assert not database.exists()
    started = time.monotonic()
    assert runner.invoke(app, ["promote", "--version", "1"]).exit_code == 4
    assert time.monotonic() - started < 60 and not database.exists()
