"""Webhooks that become triggers: Alertmanager (v4 payload) and GitHub (HMAC-signed).

Credentials come first, through the app's one authentication backend
(`tether.serving.auth`): Alertmanager's bearer token before the body is read, GitHub's
signature over the body before anything parses it, the body read to at most `MAX_BODY`
bytes (a larger Content-Length is refused unread). Then the body is parsed by a
non-recursive parser and validated. Every refusal (401, 403, 400, 404, 413) is the app's
one error document and triggers nothing. Accepted triggers are recorded at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tether.control.triggers import Trigger, TriggerAction, TriggerKind
from tether.errors import InputError, ModelNotFound
from tether.events import EventKind
from tether.project import Project
from tether.serving.auth import ALERTMANAGER, grants_of, requires
from tether.serving.http import json_response, load_json, read_body, shown

__all__ = ["GITHUB_EVENT_ACTIONS", "MAX_BODY", "hook_routes"]

GITHUB_EVENT_ACTIONS = {"model-performance-drop": TriggerAction.RETRAIN,
                        "performance-alert": TriggerAction.ROLLBACK}
MAX_BODY = 1_000_000
HOOK_LIMIT = "webhook bodies"


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


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(body)"
    return f"{where}: {error['msg']}"


def hook_routes(project: Project, submit: Callable[[Trigger], None]) -> list[BaseRoute]:
    """`POST /hooks/alertmanager` and `POST /hooks/github`, handing triggers to `submit`.

    The app they join must install `tether.serving.auth.auth_middleware`.
    """
    model = project.model_name

    @requires(ALERTMANAGER)
    async def alertmanager(request: Request) -> Response:
        document = load_json(await read_body(request, MAX_BODY, HOOK_LIMIT))
        try:
            payload = _AlertmanagerPayload.model_validate(document)
        except ValidationError as exc:
            raise InputError(f"not an Alertmanager v4 payload: {_first_error(exc)}") from None
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
            elif action not in (TriggerAction.RETRAIN, TriggerAction.ROLLBACK):
                ignored.append({"alert": name, "why": f"label action={action!r} is not "
                                                      "retrain or rollback"})
            else:
                summary = alert.annotations.get("summary", "")
                submit(Trigger(TriggerKind.ALERTMANAGER, f"{name}: {summary}".rstrip(": "),
                               action=TriggerAction(action),
                               data={"labels": alert.labels, "annotations": alert.annotations}))
                accepted.append({"alert": name, "action": action})
        if ignored:
            project.record(EventKind.HOOK_IGNORED, f"alertmanager: {len(ignored)} alert(s) ignored",
                           data={"ignored": ignored})
        return json_response({"accepted": accepted, "ignored": ignored}, 202)

    async def github(request: Request) -> Response:
        body = await grants_of(request).signed_body(request, MAX_BODY)
        event = request.headers.get("x-github-event", "")
        if event == "ping":
            return json_response({"pong": True})
        if event != "repository_dispatch":
            raise InputError(f"X-GitHub-Event {event!r} is not repository_dispatch")
        try:
            payload = _GithubDispatch.model_validate(load_json(body))
        except ValidationError as exc:
            raise InputError(f"not a repository_dispatch payload: {_first_error(exc)}"
                             ) from None
        action = GITHUB_EVENT_ACTIONS.get(payload.action)
        if action is None:
            raise InputError(f"event type {payload.action!r} is not one of "
                             f"{', '.join(GITHUB_EVENT_ACTIONS)}")
        target = payload.client_payload.get("model_name", model)
        if not isinstance(target, str):
            raise InputError(f"client_payload.model_name: expected text, got {shown(target)}")
        if target != model:
            project.record(EventKind.HOOK_IGNORED, f"github: unknown model {target!r}")
            raise ModelNotFound(f"unknown model {target!r}; this controller runs {model!r}")
        given = [payload.client_payload.get(key) for key in ("trigger_reason", "reason")]
        reason = next((text for text in given if isinstance(text, str) and text),
                      payload.action)
        submit(Trigger(TriggerKind.GITHUB, reason, action=action,
                       data={"event_type": payload.action,
                             "client_payload": payload.client_payload}))
        return json_response({"accepted": [{"event_type": payload.action,
                                            "action": action.value}]}, 202)

    return [Route("/hooks/alertmanager", alertmanager, methods=["POST"]),
            Route("/hooks/github", github, methods=["POST"])]
