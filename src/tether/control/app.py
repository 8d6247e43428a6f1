"""The controller's HTTP side: webhooks, `/trigger`, its status, health and metrics,
behind the same authentication backend and error table as the model server.

```
POST /hooks/alertmanager, /hooks/github   triggers (control/hooks.py)
POST /trigger                              a manual retrain (admin token)
GET  /controller/status                    the status the last pass persisted
GET  /health, /metrics                     (alone: `tether controller`)
```
`tether.apps` builds the processes that mount these: `controller_app` is the
`tether controller` shape's app; `tether up` mounts `status_routes` in the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tether.control.controller import Controller
from tether.control.hooks import MAX_BODY, hook_routes
from tether.control.triggers import Trigger, TriggerKind
from tether.logs import AccessLog
from tether.project import Project
from tether.serving.admin import trigger_endpoint
from tether.serving.auth import TokenBackend, auth_middleware
from tether.serving.http import BodyLimit, error_handlers

__all__ = ["controller_app", "status_routes"]


def status_routes(project: Project) -> list[BaseRoute]:
    async def status(request: Request) -> JSONResponse:
        """The controller's status.
        ---
        summary: Conditions (type, status, reason, message, since), the last pass's actions
        tags: [controller]
        responses:
          200: {description: "status: the persisted document, or null before a first pass"}
        """
        found = await run_in_threadpool(project.store.load_status, project.model_name)
        return JSONResponse({"model": project.model_name, "status": found})

    return [Route("/controller/status", status, methods=["GET"])]


def controller_app(controller: Controller, registry: CollectorRegistry,
                   interval: float | None = None) -> Starlette:
    """Hooks, `/trigger`, status, health and metrics; the controller's loop runs in a
    thread for the app's lifetime."""
    project = controller.project

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with controller.running(interval):
            yield

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": project.model_name})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def retrain(reason: str) -> None:
        controller.submit(Trigger(TriggerKind.MANUAL, reason))

    routes = [*hook_routes(project, controller.submit),
              Route("/trigger", trigger_endpoint(retrain), methods=["POST"]),
              *status_routes(project),
              Route("/health", health), Route("/metrics", metrics)]
    backend = TokenBackend.from_settings(project.settings)
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=error_handlers(),
                     middleware=[Middleware(AccessLog),
                                 Middleware(BodyLimit, limit=MAX_BODY,
                                            setting="the controller's limit"),
                                 auth_middleware(backend)])
