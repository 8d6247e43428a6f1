"""`tether retrain` across a real federation: a SuperLink and three SuperNodes (Flower
processes on 127.0.0.1), each hospital with its own data; then the gate, a canary and a
promotion, as for any other version. Sites drop out mid-run, and too few sites fail the
run without leaving anything in the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient

from tether import lifecycle
from tether.control.controller import Controller
from tether.control.triggers import TriggerKind
from tether.example.health import TARGET, generate
from tether.federated import LocalFederation
from tether.federated.sites import SiteWatcher
from tether.federated.template import SITES, write_site_data
from tether.monitoring.profile import Profile
from tether.net import free_port, wait_http
from tether.project import Project
from tether.registry import State
from tether.store import PredictionRecord

SAMPLES = 480  # 600 rows a site, 20% kept for its validation split


def tether(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", "--config",
                           str(folder / "tether.yaml"), *args],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ),
                          check=False)


def history(project: Project, run_id: str, metric: str) -> dict[int, float]:
    client = MlflowClient(tracking_uri=project.settings.tracking_uri)
    return {m.step: m.value for m in client.get_metric_history(run_id, metric)}


def serve(project: Project, version: int, route: str, rows: int, seed: int) -> None:
    """Real predictions of a version on patients of every hospital, logged and labeled."""
    model = project.registry.load_model(version)
    frame = pd.concat([generate(site, rows // len(SITES), seed=seed) for site in SITES],
                      ignore_index=True)
    features = frame.drop(columns=[TARGET])
    assert model.predict_proba is not None
    scores = model.predict_proba(features)[:, 1]
    ids = [uuid.uuid4().hex for _ in range(len(frame))]
    project.store.log_predictions([
        PredictionRecord(id=pid, model_name=project.model_name, model_version=version,
                         route=route, features=features.iloc[i].to_dict(),
                         prediction=float(scores[i] >= 0.5), score=float(scores[i]),
                         latency_ms=2.0)
        for i, pid in enumerate(ids)])
    project.store.add_feedback([(pid, float(frame[TARGET].iloc[i]))
                                for i, pid in enumerate(ids)])


def test_retrain_registers_the_federated_model_with_every_site_and_round(
        federation: tuple[Path, LocalFederation]) -> None:
    folder, _ = federation
    done = tether(folder, "retrain", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model_version"] == 1
    assert result["details"]["federated"]["sites"] == list(SITES)
    assert result["details"]["federated"]["dropped"] == {}
    assert result["details"]["federated"]["rounds"] == 3
    assert result["metrics"]["holdout_roc_auc"] > 0.72

    project = Project.open(folder / "tether.yaml")
    info = project.registry.version(1)
    assert info.state == State.CANDIDATE
    run = result["run_id"]
    for site in SITES:
        assert history(project, run, f"site/{site}/samples") == {1: SAMPLES, 2: SAMPLES,
                                                                  3: SAMPLES}
        assert set(history(project, run, f"site/{site}/global_val_roc_auc")) == {1, 2, 3}
        assert set(history(project, run, f"site/{site}/final_val_roc_auc")) == {3}
    central = history(project, run, "global/val_roc_auc")
    assert set(central) == {1, 2, 3} and central[3] > 0.72
    assert history(project, run, "round/sites") == {1: 3.0, 2: 3.0, 3: 3.0}
    params = MlflowClient(tracking_uri=project.settings.tracking_uri).get_run(run).data.params
    assert params["federated_sites"] == ",".join(SITES)

    loaded = project.registry.load_model(1)
    assert [c.name for c in loaded.columns] == list(generate("hospital_01", 1).columns[:-1])
    profile = Profile.from_dict(json.loads(
        project.registry.reference_artifact(1, "profile.json").read_text()))
    assert profile.calibration is not None and "heart_rate" in profile.features

    gate = tether(folder, "gate", "--json")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert json.loads(gate.stdout)["passed"] is True
    assert tether(folder, "promote").returncode == 0
    assert project.registry.state().champion == 1


def test_a_site_whose_own_data_drifted_fires_a_drift_trigger_for_that_site(
        federation: tuple[Path, LocalFederation]) -> None:
    folder, _ = federation
    project = Project.open(folder / "tether.yaml")
    assert project.registry.state().champion == 1, "runs after the first test"
    write_site_data(folder, "hospital_01", shift=0.9)  # a wildfire season at one hospital

    done = tether(folder, "sites", "--json")
    assert done.returncode == 1, done.stderr  # a site drifted
    verdicts = json.loads(done.stdout)
    assert {site: v["drifted"] for site, v in verdicts.items()} == {
        "hospital_01": True, "hospital_02": False, "hospital_03": False}
    assert verdicts["hospital_01"]["rows"] == 500
    assert "pm25" in [f["name"] for f in verdicts["hospital_01"]["features"] if f["drifted"]]
    stored = project.store.site_summaries(project.model_name)
    assert [s.site for s in stored] == list(SITES) and all(s.version == 1 for s in stored)
    assert all(sum(s.counts["pm25"]) == 500 for s in stored)

    watcher = SiteWatcher(project, collect=lambda _: None)
    state = project.registry.state()
    (trigger,) = watcher(state, time.time())
    assert trigger.kind is TriggerKind.DRIFT and trigger.data["site"] == "hospital_01"
    assert trigger.reason.startswith("site hospital_01: drift share")
    assert watcher(state, time.time()) == []  # one season, one trigger
    write_site_data(folder, "hospital_01")  # the season passes


def test_a_site_that_leaves_mid_run_is_named_and_the_rest_carry_on(
        federation: tuple[Path, LocalFederation]) -> None:
    folder, running = federation
    project = Project.open(folder / "tether.yaml")
    assert project.registry.state().champion == 1, "runs after the first test"

    def leave_after_round_one(description: str, completed: int, total: int | None) -> None:
        if description.startswith("federated: round 1/") and "hospital_03" in \
                running.processes:
            running.stop_site("hospital_03")

    result = lifecycle.train(project, reason="a site leaves", progress=leave_after_round_one)
    federated = result.details["federated"]
    assert list(federated["dropped"]) == ["hospital_03"]
    assert "round 2" in federated["dropped"]["hospital_03"]
    assert history(project, result.run_id, "round/sites") == {1: 3.0, 2: 2.0, 3: 2.0}
    assert set(history(project, result.run_id, "site/hospital_03/samples")) == {1}
    assert set(history(project, result.run_id, "site/hospital_01/samples")) == {1, 2, 3}
    run = MlflowClient(tracking_uri=project.settings.tracking_uri).get_run(result.run_id)
    assert run.data.params["federated_dropped"].startswith("hospital_03 (round 2")

    verdict = lifecycle.gate(project, result.version)
    assert verdict.passed, verdict.summary
    numbers = verdict.numbers
    assert numbers["champion"] == 1 and numbers["rows"] > 0
    assert set(numbers["scores"]) == {"challenger", "champion"}  # both on the same rows

    # the canary runs on the federated challenger like on any other version
    controller = Controller(project)
    controller.tick()
    rollout = project.registry.state().rollout
    assert rollout is not None and (rollout.version, rollout.mode) == (result.version, "canary")
    for step in range(len(project.policy.rollout.steps)):
        serve(project, 1, "champion", 600, seed=10 + step)
        serve(project, result.version, "canary", 300, seed=20 + step)
        controller.tick()
    state = project.registry.state()
    assert state.champion == result.version and state.previous == 1
    steps = project.store.events(project.model_name, kinds=["rollout_step"])
    assert [e.data["verdict"] for e in steps] == ["pass"] * len(project.policy.rollout.steps)


# the blueprint's own request (its README's `curl -X POST /predict -d '{...}'`)
PATIENT = {"heart_rate": 75, "steps": 8000, "sleep_hours": 7.5, "respiratory_rate": 16,
           "body_temp": 98.6, "pm25": 15, "pm10": 25, "o3": 0.05, "no2": 0.02,
           "temperature": 72, "humidity": 50}


def test_the_federated_champion_answers_the_blueprints_request(
        federation: tuple[Path, LocalFederation]) -> None:
    folder, _ = federation
    project = Project.open(folder / "tether.yaml")
    champion = project.registry.state().champion
    assert champion == 2, "runs after the canary test"
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "tether", "--config",
                                   str(folder / "tether.yaml"), "serve", "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", process=server, log=log, timeout=120)
        # the blueprint's own body: one flat JSON object is one row
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=PATIENT, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["predictions"] in ([0], [1]) and len(body["ids"]) == 1
        expected = project.registry.load_model(champion).predict_proba(
            pd.DataFrame([PATIENT]).astype(float))[:, 1]
        assert body["scores"] == pytest.approx(list(expected))
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        assert "tether_predictions_total" in httpx.get(f"http://127.0.0.1:{port}/metrics",
                                                      timeout=10).text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_too_few_sites_fail_the_run_in_one_line_and_register_nothing(
        federation: tuple[Path, LocalFederation]) -> None:
    folder, running = federation
    project = Project.open(folder / "tether.yaml")
    before = [v.version for v in project.registry.state().versions]
    running.stop_site("hospital_02")
    done = tether(folder, "retrain", "--json")
    assert done.returncode != 0
    # progress lines, then the error: one line, last
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == lines[-1:] and "fewer than min_sites 2" in errors[0], lines
    assert [v.version for v in project.registry.state().versions] == before
    failed = project.store.events(project.model_name, kinds=["retrain_failed"])
    assert failed and "min_sites 2" in failed[-1].reason
