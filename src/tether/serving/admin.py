"""Manual retraining over HTTP: `POST /trigger` (admin token), in every process shape.

Where a controller runs in the process (`tether up`, `tether controller`), the trigger is
handed to it. `tether serve` alone forwards it to the controller at
`TETHER_CONTROLLER_URL` when that is set, and otherwise answers 503 saying what to run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tether.errors import ControllerUnavailable, InputError
from tether.serving.auth import ADMIN, requires
from tether.serving.http import json_response, read_json_object, shown

__all__ = ["ADMIN_BODY_BYTES", "ADMIN_LIMIT", "DEFAULT_REASON", "NO_CONTROLLER", "Retrain",
           "forward_to", "reason_of", "trigger_endpoint"]

Retrain = Callable[[str], None]  # blocking; raises a TetherError when it cannot
ADMIN_BODY_BYTES = 64 * 1024
ADMIN_LIMIT = "admin routes take a small JSON object"
DEFAULT_REASON = "manual retrain over HTTP"
NO_CONTROLLER = ("no controller runs in this process, so nothing can retrain from here: run "
                 "`tether up` (server and controller), set TETHER_CONTROLLER_URL to forward "
                 "to `tether controller`, or run `tether retrain` from a shell")


def reason_of(body: dict[str, object], default: str) -> str:
    """The optional `reason` of an admin request, trimmed to 500 characters."""
    reason = body.get("reason")
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        return default
    if not isinstance(reason, str):
        raise InputError(f"reason: expected text, got {shown(reason)}")
    return reason.strip()[:500]


def trigger_endpoint(retrain: Retrain | None) -> Callable[[Request], Awaitable[Response]]:
    """`POST /trigger` handing a manual retrain to `retrain` (None: no controller here)."""

    @requires(ADMIN)
    async def trigger(request: Request) -> Response:
        """Ask the controller to retrain now.
        ---
        summary: Hand a manual retrain trigger to the controller (admin token)
        tags: [admin]
        security: [{bearer: []}]
        requestBody:
          content:
            application/json:
              schema: {type: object, properties: {reason: {type: string}}}
        responses:
          202: {description: "accepted: the trigger was handed to the controller"}
          400: {description: bad body}
          401: {description: missing or wrong token}
          403: {description: no TETHER_ADMIN_TOKEN configured}
          503: {description: no controller runs here and none is configured to forward to}
        """
        body = await read_json_object(request, ADMIN_BODY_BYTES, ADMIN_LIMIT,
                                      fields=("reason",))
        reason = reason_of(body, DEFAULT_REASON)
        if retrain is None:
            raise ControllerUnavailable(NO_CONTROLLER)
        await run_in_threadpool(retrain, reason)
        return json_response({"accepted": True, "reason": reason}, 202)

    return trigger


def forward_to(url: str, token: str | None, *, timeout: float = 10.0) -> Retrain:
    """A `Retrain` that posts the trigger to the controller's `/trigger` at `url`."""
    target = f"{url.rstrip('/')}/trigger"
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def forward(reason: str) -> None:
        try:
            answer = httpx.post(target, json={"reason": reason}, headers=headers,
                                timeout=timeout)
        except httpx.HTTPError as exc:
            raise ControllerUnavailable(f"the controller at {url} did not answer "
                                        f"({type(exc).__name__}); check "
                                        "TETHER_CONTROLLER_URL") from exc
        if answer.status_code >= 300:
            try:
                detail = str(answer.json().get("message", ""))
            except ValueError:
                detail = answer.text[:200]
            raise ControllerUnavailable(f"the controller at {url} answered "
                                        f"{answer.status_code}: {detail}")

    return forward
