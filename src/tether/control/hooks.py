"""Webhooks that become triggers: Alertmanager (v4 payload) and GitHub (HMAC-signed).

Both answer 401 on a bad token or signature and 400 on a malformed payload, with a JSON
reason, and trigger nothing in either case. Accepted triggers are recorded at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tether.control.triggers import Action, Trigger, TriggerKind
from tether.project import Project

__all__ = ["GITHUB_EVENT_ACTIONS", "hook_routes", "sign"]

GITHUB_EVENT_ACTIONS = {"model-performance-drop": Action.RETRAIN,
                        "performance-alert": Action.ROLLBACK}
MAX_BODY = 1_000_000


class _Alert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    fingerprint: str | None = None


class _AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[_Alert]


class _GithubDispatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str
    client_payload: dict[str, Any] = {}


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`.

    >>> sign("s3cret", b'{"a": 1}')[:20]
    'sha256=1a9fab6cd4b8c'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(body)"
    return f"{where}: {error['msg']}"


async def _json_body(request: Request) -> tuple[bytes, Any] | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(413, f"body of {len(body)} bytes is over the {MAX_BODY} byte limit")
    try:
        return body, json.loads(body)
    except ValueError as exc:
        return _error(400, f"body is not valid JSON: {exc}")


def hook_routes(project: Project, submit: Callable[[Trigger], None]) -> list[BaseRoute]:
    """`POST /hooks/alertmanager` and `POST /hooks/github`, handing triggers to `submit`."""
    settings = project.settings
    model = project.model_name

    async def alertmanager(request: Request) -> JSONResponse:
        token = settings.alertmanager_token or settings.admin_token
        if token is None:
            return _error(403, "webhook disabled: set TETHER_ALERTMANAGER_TOKEN")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
        parsed = await _json_body(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        try:
            payload = _AlertmanagerPayload.model_validate(parsed[1])
        except ValidationError as exc:
            return _error(400, f"not an Alertmanager v4 payload: {_first_error(exc)}")
        accepted, ignored = [], []
        for alert in payload.alerts:
            name = alert.labels.get("alertname", "unnamed")
            action = alert.labels.get("action")
            target = alert.labels.get("model", model)
            if alert.status != "firing":
                ignored.append({"alert": name, "why": "resolved"})
            elif target != model:
                ignored.append({"alert": name, "why": f"unknown model {target!r}; this "
                                                      f"controller runs {model!r}"})
            elif action not in (Action.RETRAIN, Action.ROLLBACK):
                ignored.append({"alert": name, "why": f"label action={action!r} is not "
                                                      "retrain or rollback"})
            else:
                summary = alert.annotations.get("summary", "")
                submit(Trigger(TriggerKind.ALERTMANAGER, f"{name}: {summary}".rstrip(": "),
                               action=Action(action),
                               data={"labels": alert.labels, "annotations": alert.annotations}))
                accepted.append({"alert": name, "action": action})
        if ignored:
            project.record("hook_ignored", f"alertmanager: {len(ignored)} alert(s) ignored",
                           data={"ignored": ignored})
        return JSONResponse({"accepted": accepted, "ignored": ignored}, status_code=202)

    async def github(request: Request) -> JSONResponse:
        secret = settings.github_webhook_secret
        if secret is None:
            return _error(403, "webhook disabled: set TETHER_GITHUB_WEBHOOK_SECRET")
        parsed = await _json_body(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        body, raw = parsed
        signature = request.headers.get("x-hub-signature-256", "")
        if not hmac.compare_digest(signature.encode(), sign(secret, body).encode()):
            return _error(401, "missing or wrong X-Hub-Signature-256")
        event = request.headers.get("x-github-event", "")
        if event == "ping":
            return JSONResponse({"pong": True})
        if event != "repository_dispatch":
            return _error(400, f"X-GitHub-Event {event!r} is not repository_dispatch")
        try:
            payload = _GithubDispatch.model_validate(raw)
        except ValidationError as exc:
            return _error(400, f"not a repository_dispatch payload: {_first_error(exc)}")
        action = GITHUB_EVENT_ACTIONS.get(payload.action)
        if action is None:
            return _error(400, f"event type {payload.action!r} is not one of "
                               f"{', '.join(GITHUB_EVENT_ACTIONS)}")
        target = str(payload.client_payload.get("model_name", model))
        if target != model:
            project.record("hook_ignored", f"github: unknown model {target!r}")
            return _error(404, f"unknown model {target!r}; this controller runs {model!r}")
        reason = str(payload.client_payload.get("trigger_reason")
                     or payload.client_payload.get("reason") or payload.action)
        submit(Trigger(TriggerKind.GITHUB, reason, action=action,
                       data={"event_type": payload.action,
                             "client_payload": payload.client_payload}))
        return JSONResponse({"accepted": [{"event_type": payload.action,
                                           "action": action.value}]}, status_code=202)

    return [Route("/hooks/alertmanager", alertmanager, methods=["POST"]),
            Route("/hooks/github", github, methods=["POST"])]
