"""The controller on its own (`tether controller`): webhooks, `/trigger`, health and metrics,
behind the same authentication backend and error table as the model server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.control.controller import Controller
from tether.control.hooks import MAX_BODY, hook_routes
from tether.control.triggers import Trigger, TriggerKind
from tether.logs import AccessLog
from tether.serving.admin import trigger_endpoint
from tether.serving.auth import TokenBackend, auth_middleware
from tether.serving.http import BodyLimit, error_handlers

__all__ = ["controller_app"]


def controller_app(controller: Controller, registry: CollectorRegistry,
                   interval: float | None = None) -> Starlette:
    """Hooks on HTTP, the reconcile loop in a thread for the app's lifetime."""
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with controller.running(interval):
            yield

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": controller.project.model_name})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def analysis(request: Request) -> JSONResponse:
        latest: Any = controller.last_analysis
        return JSONResponse({"analysis": latest})

    def retrain(reason: str) -> None:
        controller.submit(Trigger(TriggerKind.MANUAL, reason))

    routes = [*hook_routes(controller.project, controller.submit),
              Route("/trigger", trigger_endpoint(retrain), methods=["POST"]),
              Route("/health", health), Route("/metrics", metrics),
              Route("/controller/analysis", analysis)]
    backend = TokenBackend.from_settings(controller.project.settings)
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=error_handlers(),
                     middleware=[Middleware(AccessLog),
                                 Middleware(BodyLimit, limit=MAX_BODY,
                                            setting="the controller's limit"),
                                 auth_middleware(backend)])
