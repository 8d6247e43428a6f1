"""Fuzz the OpenAPI document with schemathesis against a real server: no 5xx, ever."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from tests.serving.conftest import LiveServer
from tether.project import Project
from tether.serving import create_app


def test_fuzzed_requests_never_get_a_server_error(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        live: Callable[[Starlette], LiveServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", "fuzz-token")
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    failures: list[str] = []
    calls: list[str] = []
    with live(app) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(max_examples=12, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.url, timeout=30)
                calls.append(f"{case.method} {case.path}")
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path} -> {response.status_code}: "
                                    f"{response.text[:200]}")

            call()
        assert server.thread.is_alive()
    assert failures == []
    assert {"POST /predict", "POST /invocations", "POST /feedback"} <= set(calls)
    assert len(calls) > 50
