"""Webhooks into triggers, and triggers out to GitHub, over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import write_project
from tests.control.github_stub import github_stub
from tether.cli import app
from tether.control.actions import Dispatch
from tether.control.app import controller_app
from tether.control.controller import Controller
from tether.control.hooks import hook_routes
from tether.control.triggers import Trigger, TriggerAction, TriggerKind
from tether.project import Project
from tether.serving.auth import TokenBackend, auth_middleware, sign
from tether.serving.http import error_handlers

SECRET = "hook-secret"
TOKEN = "am-token"


@pytest.fixture
def hooked(project_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TETHER_ALERTMANAGER_TOKEN", TOKEN)
    monkeypatch.setenv("TETHER_GITHUB_WEBHOOK_SECRET", SECRET)
    project = Project.open(project_dir / "tether.yaml")
    received: list[Trigger] = []
    client = TestClient(Starlette(
        routes=hook_routes(project, received.append), exception_handlers=error_handlers(),
        middleware=[auth_middleware(TokenBackend.from_settings(project.settings))]))
    return project, client, received


def alert_payload(action: str = "retrain", model: str = "loan-default",
                  status: str = "firing") -> dict[str, object]:
    return {"version": "4", "status": status, "receiver": "tether", "groupKey": "{}",
            "alerts": [{"status": status, "labels": {"alertname": "ModelMetricBelowFloor",
                                                      "action": action, "model": model},
                        "annotations": {"summary": "roc_auc 0.61 < 0.70"}}]}


def test_alertmanager_firing_alert_becomes_a_trigger(hooked) -> None:  # type: ignore[no-untyped-def]
    _, client, received = hooked
    response = client.post("/hooks/alertmanager", json=alert_payload(),
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202
    assert response.json()["accepted"] == [{"alert": "ModelMetricBelowFloor",
                                            "action": "retrain"}]
    assert [(t.kind, t.action, t.reason) for t in received] == [
        (TriggerKind.ALERTMANAGER, TriggerAction.RETRAIN,
         "ModelMetricBelowFloor: roc_auc 0.61 < 0.70")]
    response = client.post("/hooks/alertmanager", json=alert_payload(action="rollback"),
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert received[-1].action is TriggerAction.ROLLBACK


@pytest.mark.parametrize(("headers", "body", "status", "reason"), [
    ({}, alert_payload(), 401, "missing alertmanager token"),
    ({"Authorization": "Bearer nope"}, alert_payload(), 401,
     "wrong alertmanager token: it does not match TETHER_ALERTMANAGER_TOKEN"),
    ({"Authorization": f"Bearer {TOKEN}"}, {"version": "3", "alerts": []}, 400,
     "not an Alertmanager v4 payload: version"),
    ({"Authorization": f"Bearer {TOKEN}"}, {"version": "4", "status": "firing",
                                           "alerts": [{"labels": {}}]}, 400,
     "alerts.0.status: Field required"),
])
def test_alertmanager_rejects_bad_requests_and_triggers_nothing(  # type: ignore[no-untyped-def]
        hooked, headers, body, status, reason) -> None:
    project, client, received = hooked
    response = client.post("/hooks/alertmanager", json=body, headers=headers)
    assert response.status_code == status
    assert reason in response.json()["message"]
    assert received == []
    assert project.store.events(project.model_name) == []


def test_alertmanager_malformed_json_is_400(hooked) -> None:  # type: ignore[no-untyped-def]
    _, client, received = hooked
    response = client.post("/hooks/alertmanager", content=b"{nope",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400
    assert response.json() == {"error": "InputError", "message": response.json()["message"]}
    assert "malformed JSON" in response.json()["message"]
    assert received == []


def test_alertmanager_unknown_model_and_resolved_alerts_are_ignored(  # type: ignore[no-untyped-def]
        hooked) -> None:
    project, client, received = hooked
    for body in (alert_payload(model="fraud"), alert_payload(status="resolved"),
                 alert_payload(action="page-someone")):
        response = client.post("/hooks/alertmanager", json=body,
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 202
        assert response.json()["accepted"] == []
    assert received == []
    ignored = project.store.events(project.model_name, kinds=["hook_ignored"])
    assert "unknown model 'fraud'" in ignored[0].data["ignored"][0]["why"]
    assert len(ignored) == 3


def _dispatch_body(event_type: str = "model-performance-drop",
                   model: str = "loan-default") -> bytes:
    return json.dumps({"action": event_type, "branch": "main",
                       "client_payload": {"model_name": model,
                                          "trigger_reason": "accuracy dropped"}}).encode()


def test_github_signed_dispatch_becomes_a_trigger(hooked) -> None:  # type: ignore[no-untyped-def]
    _, client, received = hooked
    body = _dispatch_body()
    response = client.post("/hooks/github", content=body, headers={
        "X-GitHub-Event": "repository_dispatch", "X-Hub-Signature-256": sign(SECRET, body)})
    assert response.status_code == 202
    assert [(t.kind, t.action, t.reason) for t in received] == [
        (TriggerKind.GITHUB, TriggerAction.RETRAIN, "accuracy dropped")]
    body = _dispatch_body("performance-alert")
    client.post("/hooks/github", content=body, headers={
        "X-GitHub-Event": "repository_dispatch", "X-Hub-Signature-256": sign(SECRET, body)})
    assert received[-1].action is TriggerAction.ROLLBACK


@pytest.mark.parametrize(("signature", "event", "body", "status", "reason"), [
    ("sha256=00", "repository_dispatch", _dispatch_body(), 401, "X-Hub-Signature-256"),
    (None, "push", _dispatch_body(), 400, "is not repository_dispatch"),
    (None, "repository_dispatch", _dispatch_body("deploy"), 400, "event type 'deploy'"),
    (None, "repository_dispatch", _dispatch_body(model="fraud"), 404, "unknown model 'fraud'"),
    (None, "repository_dispatch", b'{"client_payload": {}}', 400, "action: Field required"),
])
def test_github_rejects_bad_requests(  # type: ignore[no-untyped-def]
        hooked, signature, event, body, status, reason) -> None:
    _, client, received = hooked
    response = client.post("/hooks/github", content=body, headers={
        "X-GitHub-Event": event, "X-Hub-Signature-256": signature or sign(SECRET, body)})
    assert response.status_code == status
    assert reason in response.json()["message"]
    assert received == []


def test_trigger_command_sends_repository_dispatch(project_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_GITHUB_TOKEN", "ghp_test")
    with github_stub() as stub:
        result = CliRunner().invoke(app, ["trigger", "--github", "acme/models", "--reason",
                                          "accuracy below benchmark", "--api-url", stub.url])
    assert result.exit_code == 0, result.output
    (request,) = stub.requests
    assert request["path"] == "/repos/acme/models/dispatches"
    assert request["headers"]["Authorization"] == "Bearer ghp_test"
    assert request["body"] == {"event_type": "model-performance-drop", "client_payload": {
        "model_name": "loan-default", "trigger_reason": "accuracy below benchmark"}}


def test_trigger_command_reports_github_refusal(project_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_GITHUB_TOKEN", "expired")
    with github_stub(status=401) as stub:
        result = CliRunner().invoke(app, ["trigger", "--github", "acme/models",
                                          "--api-url", stub.url])
    assert result.exit_code == 7
    assert "GitHub answered 401" in result.output
    monkeypatch.delenv("TETHER_GITHUB_TOKEN")
    result = CliRunner().invoke(app, ["trigger", "--github", "acme/models"])
    assert result.exit_code == 2
    assert "set TETHER_GITHUB_TOKEN" in result.output


def test_controller_hands_retraining_to_ci_when_configured(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(project_dir, **{"triggers.github_repo": "acme/models"})
    monkeypatch.setenv("TETHER_GITHUB_TOKEN", "ghp_test")
    project = Project.open(project_dir / "tether.yaml")
    with github_stub() as stub:
        monkeypatch.setenv("TETHER_GITHUB_API_URL", stub.url)
        controller = Controller(project)
        controller.submit(Trigger(TriggerKind.DRIFT, "drift share 0.7"))
        (dispatched,) = controller.tick().of(Dispatch)
        assert dispatched.describe() == "dispatch model-performance-drop to acme/models"
    assert stub.requests[0]["body"]["client_payload"]["trigger_reason"] == "drift: drift share 0.7"
    assert project.registry.state().versions == ()


def _status_after_a_few_bytes(url: str, path: str, headers: dict[str, str]) -> int:
    """Announce a 300 MB body (or stream it chunked), send 1 kB of it, read the answer."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "X-GitHub-Event: repository_dispatch",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    chunked = headers.get("Transfer-Encoding") == "chunked"
    first = b"400\r\n" + b"[" * 1024 + b"\r\n" if chunked else b"[" * 1024
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall("\r\n".join(lines).encode() + first)
        return int(conn.makefile("rb").readline().split()[1])


def test_github_checks_size_and_signature_before_reading_or_parsing(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from tests.serving.conftest import LiveServer

    monkeypatch.setenv("TETHER_GITHUB_WEBHOOK_SECRET", SECRET)
    controller = Controller(Project.open(project_dir / "tether.yaml"))
    deep = b"[" * 200_000
    well_formed = "sha256=" + "0" * 64
    with caplog.at_level(logging.ERROR), \
            LiveServer(controller_app(controller, CollectorRegistry(), 3600)) as server:
        hook = f"{server.url}/hooks/github"
        event = {"X-GitHub-Event": "repository_dispatch"}
        unsigned = httpx.post(hook, content=deep, headers=event)
        malformed = httpx.post(hook, content=deep, headers={
            **event, "X-Hub-Signature-256": "sha256=00"})
        forged = httpx.post(hook, content=deep, headers={
            **event, "X-Hub-Signature-256": well_formed})
        signed = httpx.post(hook, content=deep[:5000], headers={
            **event, "X-Hub-Signature-256": sign(SECRET, deep[:5000])})
        declared = _status_after_a_few_bytes(server.url, "/hooks/github", {
            "Content-Length": "300000000", "X-Hub-Signature-256": well_formed})
        streamed_unsigned = _status_after_a_few_bytes(server.url, "/hooks/github", {
            "Transfer-Encoding": "chunked"})
        streamed = httpx.post(hook, content=iter([b" " * 65536] * 40), headers={
            **event, "X-Hub-Signature-256": well_formed})
    assert [(r.status_code, r.json()["error"]) for r in (unsigned, malformed, forged, signed)] \
        == [(401, "Unauthorized"), (401, "Unauthorized"), (401, "Unauthorized"),
            (400, "PayloadTooDeep")]
    assert "missing or malformed X-Hub-Signature-256" in unsigned.json()["message"]
    assert "wrong X-Hub-Signature-256" in forged.json()["message"]
    assert (declared, streamed_unsigned) == (413, 401)
    assert streamed.status_code == 413  # read up to the 1 MB limit only, then refused
    project = controller.project
    assert project.store.events(project.model_name, kinds=["trigger"]) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
