"""The requests users bring from hand-built FastAPI model services, answered as they expect:
one flat JSON object on /predict, /reload-model and /trigger behind the admin token.
Each is sent over real HTTP to a real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.linear_model import LogisticRegression
from starlette.applications import Starlette

from tests.serving.conftest import LiveServer, saved_model
from tether import apps
from tether.dashboard import dashboard_routes
from tether.net import free_port
from tether.project import Project
from tether.serving import create_app

ADMIN_TOKEN = "admin-s3cret"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# a wearables project's single-prediction request, byte for byte as its README sends it:
#   curl -X POST http://localhost:8080/predict -H "Content-Type: application/json" -d '...'
WEARABLE_REQUEST = """{
    "heart_rate": 75,
    "steps": 8000,
    "sleep_hours": 7.5,
    "respiratory_rate": 16,
    "body_temp": 98.6,
    "pm25": 15,
    "pm10": 25,
    "o3": 0.05,
    "no2": 0.02,
    "temperature": 72,
    "humidity": 50
  }"""


@pytest.fixture(scope="module")
def wearable_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(7)
    features = pd.DataFrame({
        "heart_rate": rng.normal(75, 10, 400), "steps": rng.normal(8000, 2000, 400),
        "sleep_hours": rng.normal(7, 1, 400), "respiratory_rate": rng.normal(16, 2, 400),
        "body_temp": rng.normal(98.6, 0.5, 400), "pm25": rng.normal(15, 5, 400),
        "pm10": rng.normal(25, 8, 400), "o3": rng.normal(0.05, 0.01, 400),
        "no2": rng.normal(0.02, 0.005, 400), "temperature": rng.normal(72, 8, 400),
        "humidity": rng.normal(50, 10, 400)})
    risk = (features["heart_rate"] > 80) | (features["pm25"] > 20)
    model = LogisticRegression(max_iter=2000).fit(features, risk.astype(int))
    return saved_model(tmp_path_factory.mktemp("wearables"), model, features)


def test_one_flat_json_object_on_predict_is_one_row(
        empty_project: Project, wearable_model: Path,
        live: Callable[[Starlette], LiveServer]) -> None:
    app = create_app(empty_project, registry=CollectorRegistry(), model_path=str(wearable_model))
    with live(app) as server:
        answer = httpx.post(f"{server.url}/predict", content=WEARABLE_REQUEST,
                            headers={"Content-Type": "application/json"}, timeout=30)
        nested = httpx.post(f"{server.url}/predict", json={"heart_rate": [75]}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == len(body["ids"]) == len(body["scores"]) == 1
    assert body["predictions"][0] in (0, 1) and body["route"] == "champion"
    # not a row of scalars: the usual formats are named, and the flat form too
    assert nested.status_code == 400
    assert "one flat object of column: value for a single row" in nested.json()["message"]


def test_reload_model_is_admin_reload(project: Project, versions: dict[str, int],
                                      monkeypatch: pytest.MonkeyPatch,
                                      live: Callable[[Starlette], LiveServer]) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", ADMIN_TOKEN)
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with live(app) as server:
        refused = httpx.post(f"{server.url}/reload-model", timeout=30)
        project.registry.promote(versions["b"], "the new champion")
        reloaded = httpx.post(f"{server.url}/reload-model", headers=BEARER, timeout=60)
        served = httpx.get(f"{server.url}/version", timeout=30).json()
    assert refused.status_code == 401
    assert reloaded.status_code == 200 and reloaded.json()["champion"] == versions["b"]
    assert served["versions"][0]["version"] == versions["b"]


def _triggers(project: Project) -> list[tuple[str, str]]:
    return [(event.data["kind"], event.reason)
            for event in project.store.events(project.model_name, kinds=["trigger"])]


def test_trigger_hands_a_manual_retrain_to_the_controller_in_tether_up(
        project: Project, versions: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        live: Callable[[Starlette], LiveServer]) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", ADMIN_TOKEN)
    embedded = apps.up(Project.open(project.config.path), interval=3600, poll=False)
    with live(embedded.app) as server:
        empty = httpx.post(f"{server.url}/trigger", headers=BEARER, timeout=30)
        reasoned = httpx.post(f"{server.url}/trigger", headers=BEARER, timeout=30,
                              json={"reason": "new labels from the weekly export"})
        refused = httpx.post(f"{server.url}/trigger", timeout=30)
        typo = httpx.post(f"{server.url}/trigger", headers=BEARER, json={"reson": "x"},
                          timeout=30)
    assert (empty.status_code, empty.json()) == (
        202, {"accepted": True, "reason": "manual retrain over HTTP"})
    assert reasoned.status_code == 202
    assert refused.status_code == 401
    assert typo.status_code == 400 and "unknown field(s) ['reson']" in typo.json()["message"]
    assert _triggers(project) == [("manual", "manual retrain over HTTP"),
                                  ("manual", "new labels from the weekly export")]


def test_trigger_on_serve_alone_says_what_it_cannot_do_or_forwards_to_the_controller(
        project: Project, versions: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        live: Callable[[Starlette], LiveServer]) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", ADMIN_TOKEN)
    alone = create_app(Project.open(project.config.path), poll=False,
                       registry=CollectorRegistry())
    with live(alone) as server:
        refused = httpx.post(f"{server.url}/trigger", headers=BEARER, timeout=30)
    assert refused.status_code == 503
    assert refused.json()["error"] == "ControllerUnavailable"
    assert "set TETHER_CONTROLLER_URL to forward to `tether controller`" in \
        refused.json()["message"]
    assert _triggers(project) == []

    controller = apps.controller(Project.open(project.config.path), interval=3600).app
    with live(controller) as running:
        monkeypatch.setenv("TETHER_CONTROLLER_URL", running.url)
        fresh = Project.open(project.config.path)
        forwarding = create_app(fresh, poll=False, registry=CollectorRegistry(),
                                routes=dashboard_routes(fresh))
        with live(forwarding) as server:
            forwarded = httpx.post(f"{server.url}/trigger", headers=BEARER, timeout=30,
                                   json={"reason": "drift seen by the data team"})
            from_page = httpx.post(f"{server.url}/admin/retrain", headers=BEARER, json={},
                                   timeout=30)
    assert forwarded.status_code == 202, forwarded.text
    assert from_page.status_code == 202, from_page.text
    assert _triggers(project) == [("manual", "drift seen by the data team"),
                                  ("manual", "manual retrain from the dashboard")]

    monkeypatch.setenv("TETHER_CONTROLLER_URL", f"http://127.0.0.1:{free_port()}")
    gone = create_app(Project.open(project.config.path), poll=False,
                      registry=CollectorRegistry())
    with live(gone) as server:
        unreachable = httpx.post(f"{server.url}/trigger", headers=BEARER, timeout=30)
    assert unreachable.status_code == 503
    assert "did not answer (ConnectError); check TETHER_CONTROLLER_URL" in \
        unreachable.json()["message"]
