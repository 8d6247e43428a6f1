"""One authentication backend: every protected route of every app shape, one error shape."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.serving.conftest import LiveServer, records
from tether import apps
from tether.project import Project
from tether.serving import create_app
from tether.serving.auth import ADMIN, ALERTMANAGER, FEEDBACK, TokenBackend

ADMIN_TOKEN = "admin-s3cret"
ALERTMANAGER_TOKEN = "am-s3cret"
FEEDBACK_TOKEN = "fb-s3cret"
GITHUB_SECRET = "gh-s3cret"


def scopes(backend: TokenBackend, header: str | None) -> list[str]:
    return sorted(backend.grants(header).scopes)


def test_each_token_grants_its_own_scope_only() -> None:
    backend = TokenBackend(admin="a", alertmanager="m", feedback="f")
    assert scopes(backend, None) == []
    assert scopes(backend, "Bearer a") == [ADMIN]
    assert scopes(backend, "bearer  m ") == [ALERTMANAGER]
    assert scopes(backend, "Bearer f") == [FEEDBACK]
    assert scopes(backend, "Bearer x") == []
    assert scopes(backend, "Basic a") == []  # another scheme is no credential at all
    assert scopes(backend, "Bearer") == []


def test_unset_tokens_leave_feedback_open_and_alertmanager_on_the_admin_token() -> None:
    backend = TokenBackend(admin="a")
    assert scopes(backend, None) == [FEEDBACK]
    assert scopes(backend, "Bearer a") == [ADMIN, ALERTMANAGER, FEEDBACK]
    closed = TokenBackend()
    refusal = closed.grants("Bearer a").refusal(ADMIN)
    assert (refusal.status_code, str(refusal)) == (
        403, "admin routes are disabled: set TETHER_ADMIN_TOKEN to enable them")
    assert str(TokenBackend(admin="a").grants(None).refusal(ALERTMANAGER)) == (
        "missing alertmanager token: send 'Authorization: Bearer <token>' with the value of "
        "TETHER_ADMIN_TOKEN")


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("TETHER_ALERTMANAGER_TOKEN", ALERTMANAGER_TOKEN)
    monkeypatch.setenv("TETHER_FEEDBACK_TOKEN", FEEDBACK_TOKEN)
    monkeypatch.setenv("TETHER_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)


def _shapes(project: Project) -> dict[str, Starlette]:
    """Each process shape as its command builds it: serve, up, controller."""
    fresh = Project.open(project.config.path)
    return {
        "serve": apps.serve(fresh, poll=False).app,
        "up": apps.up(Project.open(project.config.path), interval=3600, poll=False).app,
        "controller": apps.controller(Project.open(project.config.path), interval=3600).app,
    }


PROTECTED = {  # path -> (scope's token, the app shapes that have it)
    "/api/auth": (ADMIN_TOKEN, {"serve", "up"}),
    "/admin/reload": (ADMIN_TOKEN, {"serve", "up"}),
    "/reload-model": (ADMIN_TOKEN, {"serve", "up"}),
    "/trigger": (ADMIN_TOKEN, {"serve", "up", "controller"}),
    "/admin/rollback": (ADMIN_TOKEN, {"serve", "up"}),
    "/admin/retrain": (ADMIN_TOKEN, {"serve", "up"}),
    "/hooks/alertmanager": (ALERTMANAGER_TOKEN, {"up", "controller"}),
    "/feedback": (FEEDBACK_TOKEN, {"serve", "up"}),
}


def test_every_protected_route_refuses_the_same_way_in_every_shape(
        project: Project, versions: dict[str, int], tokens: None) -> None:
    seen: dict[str, set[str]] = {path: set() for path in PROTECTED}
    for shape, app in _shapes(project).items():
        with LiveServer(app) as server:
            paths = {getattr(route, "path", "") for route in app.routes}
            for path, (token, _) in PROTECTED.items():
                if path not in paths:
                    continue
                seen[path].add(shape)
                method = "GET" if path == "/api/auth" else "POST"
                for header, status, fragment in (
                        (None, 401, "missing"), ("Bearer guess", 401, "wrong"),
                        # another scope's token is no better than a guess
                        (f"Bearer {FEEDBACK_TOKEN if token != FEEDBACK_TOKEN else ADMIN_TOKEN}",
                         401, "wrong")):
                    headers = {"Authorization": header} if header else {}
                    answer = httpx.request(method, server.url + path, headers=headers,
                                           json={} if method == "POST" else None, timeout=30)
                    assert answer.status_code == status, (shape, path, answer.text)
                    assert answer.headers["www-authenticate"] == "Bearer"
                    document = answer.json()
                    assert set(document) == {"error", "message"}, document
                    assert document["error"] == "Unauthorized"
                    assert document["message"].startswith(fragment), document
    assert seen == {path: shapes for path, (_, shapes) in PROTECTED.items()}


def test_routes_are_disabled_with_a_403_naming_the_variable_when_no_token_is_set(
        project: Project, versions: dict[str, int]) -> None:
    for shape, app in _shapes(project).items():
        with TestClient(app) as client:
            for path in ("/admin/reload", "/trigger", "/hooks/alertmanager", "/hooks/github"):
                if path not in {getattr(route, "path", "") for route in app.routes}:
                    continue
                answer = client.post(path, headers={"Authorization": "Bearer x"}, json={})
                assert answer.status_code == 403, (shape, path)
                assert answer.json()["error"] == "RouteDisabled"
                assert "set TETHER_" in answer.json()["message"]


def test_feedback_takes_its_own_token_when_set(
        project: Project, versions: dict[str, int], tokens: None,
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = cancer
    with TestClient(create_app(Project.open(project.config.path), poll=False,
                               registry=CollectorRegistry())) as client:
        ids = client.post("/predict", json={"dataframe_records": records(features, 2)}
                          ).json()["ids"]
        labels = {"labels": [{"id": ids[0], "label": int(target.iloc[0])}]}
        refused = client.post("/feedback", json=labels)
        admin = client.post("/feedback", json=labels,
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        accepted = client.post("/feedback", json=labels,
                               headers={"Authorization": f"Bearer {FEEDBACK_TOKEN}"})
    assert refused.status_code == admin.status_code == 401
    assert "TETHER_FEEDBACK_TOKEN" in refused.json()["message"]
    assert accepted.status_code == 200 and accepted.json()["accepted"] == 1
    assert project.store.prediction_window(project.model_name, labeled_only=True)[
        "id"].tolist() == [ids[0]]


def test_feedback_is_open_without_a_token(project: Project, versions: dict[str, int],
                                          cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    with TestClient(create_app(project, poll=False, registry=CollectorRegistry())) as client:
        ids = client.post("/predict", json={"dataframe_records": records(features, 1)}
                          ).json()["ids"]
        answer = client.post("/feedback", json={"labels": [{"id": ids[0], "label": 1}]},
                             headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 200 and answer.json()["accepted"] == 1


def test_public_routes_ignore_whatever_authorization_a_client_sends(
        project: Project, versions: dict[str, int], tokens: None,
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    with TestClient(create_app(project, poll=False, registry=CollectorRegistry())) as client:
        for header in ("Basic dXNlcjpwYXNz", "Bearer wrong", "garbage"):
            headers = {"Authorization": header}
            assert client.post("/invocations", headers=headers, json={
                "dataframe_records": records(features, 1)}).status_code == 200
            assert client.get("/ready", headers=headers).status_code == 200
