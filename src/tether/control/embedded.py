"""Server and controller in one process (`tether up`, `tether demo`).

The controller pushes a registry change to the server in the same process by calling
its reload on the server's event loop: the old version is still loaded, so a rollback
is a pointer swap that takes effect as soon as the registry write returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from tether.control.controller import Controller
from tether.control.hooks import hook_routes
from tether.control.metrics import ControllerMetrics
from tether.control.observe import Estimator
from tether.control.triggers import Trigger, TriggerKind
from tether.control.watch import Watcher, gate_baseline
from tether.federated.sites import with_site_drift
from tether.monitoring.estimation import Calibrator, estimate_performance
from tether.monitoring.exporter import MonitoringCollector
from tether.monitoring.monitor import Monitor
from tether.project import Project

__all__ = ["Embedded", "build", "served_versions"]

PUSH_TIMEOUT_SECONDS = 60.0


@dataclass
class Embedded:
    app: Starlette
    controller: Controller
    monitor: Monitor
    registry: CollectorRegistry

    @property
    def server(self) -> Any:
        return self.app.state.server


def served_versions(app: Starlette) -> Callable[[], list[tuple[int, str]]]:
    def versions() -> list[tuple[int, str]]:
        server = getattr(app.state, "server", None)
        if server is None:
            return []
        return [(int(row["version"]), str(row["route"]))
                for row in server.snapshot()["served"]]

    return versions


def label_free_estimator(monitor: Monitor) -> Estimator:
    """Estimated metrics of a window of served rows, from the version's calibration."""

    def estimate(version: int, served: pd.DataFrame) -> Mapping[str, float | None]:
        profile = monitor.profile(version)
        if not profile.calibration or served.empty or served["score"].isna().all():
            return {}
        rows = served[served["score"].notna() & served["prediction"].notna()]
        return estimate_performance(Calibrator.from_dict(profile.calibration),
                                    rows["score"].to_numpy(float),
                                    rows["prediction"].to_numpy(float))

    return estimate


def build(project: Project, *, interval: float | None = None, poll: bool = True,
          extra_routes: list[BaseRoute] | None = None,
          lock_ttl: float = 15.0, wait_for_model: bool = True) -> Embedded:
    """The server app with the controller running for the app's lifetime
    (`wait_for_model` as in `tether.serving.create_app`)."""
    from tether.serving import create_app

    registry = CollectorRegistry()
    monitor = Monitor(project)
    primary = project.policy.metric.primary
    watcher = Watcher(project.policy, snapshot=lambda version: monitor.snapshot(version,
                                                                                "champion"),
                      baseline=lambda state: gate_baseline(state, primary))
    controller = Controller(project, watch=with_site_drift(project, watcher), lock_ttl=lock_ttl,
                            metrics=ControllerMetrics(project.model_name, registry),
                            estimator=label_free_estimator(monitor))
    holder: dict[str, Starlette] = {}

    @asynccontextmanager
    async def run_controller(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        server = app.state.server

        def push() -> None:
            asyncio.run_coroutine_threadsafe(server.reload(), loop).result(PUSH_TIMEOUT_SECONDS)

        controller.push = push
        controller.switch = lambda version: asyncio.run_coroutine_threadsafe(
            server.switch_champion(version), loop).result(PUSH_TIMEOUT_SECONDS)
        async with controller.running(interval):
            yield

    async def reload_server() -> None:
        await holder["app"].state.server.reload()

    def request_retrain(reason: str) -> None:
        controller.submit(Trigger(TriggerKind.MANUAL, reason))

    routes: list[BaseRoute] = [*hook_routes(project, controller.submit)]
    routes += _dashboard(project, reload_server, request_retrain, monitor)
    routes += extra_routes or []
    collector = MonitoringCollector(monitor, lambda: served_versions(holder["app"])())
    app = create_app(project, registry=registry, collectors=[collector], routes=routes,
                     poll=poll, lifespans=[run_controller], retrain=request_retrain,
                     wait_for_model=wait_for_model)
    holder["app"] = app
    return Embedded(app=app, controller=controller, monitor=monitor, registry=registry)


def _dashboard(project: Project, reload_server: Callable[[], Any],
               request_retrain: Callable[[str], None], monitor: Monitor) -> list[BaseRoute]:
    from tether.dashboard import dashboard_routes

    return list(dashboard_routes(project, on_registry_change=reload_server,
                                 request_retrain=request_retrain, monitor=monitor))
