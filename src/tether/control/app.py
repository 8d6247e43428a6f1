"""The controller on its own (`tether controller`): webhooks, health and metrics."""

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
from tether.control.hooks import hook_routes
from tether.logs import AccessLog

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

    routes = [*hook_routes(controller.project, controller.submit),
              Route("/health", health), Route("/metrics", metrics),
              Route("/controller/analysis", analysis)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(AccessLog)])
