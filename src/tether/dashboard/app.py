"""A Starlette app serving only the dashboard, for `tether dashboard` and for tests.

`tether serve` / `tether up` mount the same routes in the full server instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from tether import __version__
from tether.dashboard.routes import JSONBody, dashboard_routes
from tether.project import Project
from tether.serving.admin import ADMIN_BODY_BYTES, ADMIN_LIMIT
from tether.serving.auth import TokenBackend, auth_middleware
from tether.serving.http import BodyLimit, error_handlers

__all__ = ["create_dashboard_app"]


def create_dashboard_app(
    project: Project,
    *,
    admin_token: str | None,
    on_registry_change: Callable[[], Awaitable[None]] | None = None,
    request_retrain: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
) -> Starlette:
    """The dashboard's routes plus `/openapi.json` describing its API; the admin actions
    take `admin_token` as their bearer token (None: they answer 403)."""
    schemas = SchemaGenerator({"openapi": "3.0.0",
                               "info": {"title": "tether dashboard", "version": __version__}})
    routes = dashboard_routes(project, on_registry_change=on_registry_change,
                              request_retrain=request_retrain, poll_seconds=poll_seconds)

    async def openapi(request: Request) -> Response:
        return JSONBody(schemas.get_schema(routes=app.routes))

    app = Starlette(routes=[*routes, Route("/openapi.json", openapi, include_in_schema=False)],
                    middleware=[Middleware(BodyLimit, limit=ADMIN_BODY_BYTES,
                                           setting=ADMIN_LIMIT),
                                auth_middleware(TokenBackend(admin=admin_token))],
                    exception_handlers=error_handlers())
    return app
