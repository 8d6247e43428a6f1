"""The server's OpenAPI document lists the routes mounted into it (dashboard, hooks)."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from tether.dashboard import dashboard_routes
from tether.project import Project
from tether.serving import create_app


def test_dashboard_endpoints_are_in_the_servers_openapi(project: Project) -> None:
    app = create_app(project, routes=dashboard_routes(project), poll=False)
    with TestClient(app) as client:
        paths = json.loads(client.get("/openapi.json").content)["paths"]
    assert {"/api/state", "/api/timeseries", "/api/drift", "/api/events", "/predict",
            "/invocations"} <= set(paths)
    assert all(isinstance(code, str) for spec in paths.values() for operation in
               spec.values() for code in operation.get("responses", {}))
