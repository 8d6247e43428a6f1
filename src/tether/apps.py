"""The composition root: every process tether runs, built here from the same parts.

```
shape       command            what runs in the process
serve       tether serve       model server (routing, batching, prediction log), monitoring
                               (live metrics, drift, estimates, change detectors as gauges,
                               computed in a thread of their own), dashboard, /metrics
controller  tether controller  controller (observe -> plan -> apply -> status) with its
                               watchers (drift, metric, change detector) and label-free
                               estimates, the retrain worker, webhooks (/hooks/*), its
                               status (/controller/status), /health, /metrics
up          tether up          all of the above in one process: the push to the server
                               is an in-process reload and a rollback a pointer swap
dashboard   tether dashboard   the dashboard alone
replay      tether replay      a server and a controller whose passes the caller runs, in
                               the caller's simulated time (no poller, no loop thread)
```

The Helm chart runs N `serve` replicas and one `controller`: every replica exports the
server's and monitoring's metrics, the controller its own (`tether.metric_names` says
which part exports which). Each builder returns a `Process`, whose `app` the CLI serves.
Handlers read what they need from the parts handed to them here, never from globals.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from tether.metric_names import exported_by
from tether.monitoring.exporter import MonitoringCollector
from tether.monitoring.monitor import Monitor
from tether.project import Project

if TYPE_CHECKING:
    # each shape imports its parts when it is built: a model server never loads the
    # controller (nor, through it, training and the gate)
    from tether.control.controller import Controller
    from tether.control.worker import Retrain

__all__ = ["SHAPES", "Process", "controller", "dashboard", "replay", "serve",
           "serve_folder", "up"]

SHAPES = ("serve", "controller", "up", "dashboard")
PUSH_TIMEOUT_SECONDS = 60.0


@dataclass
class Process:
    """One process shape, built and ready to serve."""

    shape: str
    project: Project
    app: Starlette
    metrics: CollectorRegistry | None = None
    controller: Controller | None = None
    monitor: Monitor | None = None

    @property
    def exports(self) -> frozenset[str]:
        """The metrics this process exports on /metrics (once it has data for them): a
        model server's, monitoring's where a server computes it, a controller's."""
        sources = []
        if self.server is not None:
            sources.append("server")
            if self.monitor is not None:
                sources.append("monitoring")
        if self.controller is not None:
            sources.append("controller")
        return frozenset(name for source in sources for name in exported_by(source))

    @property
    def server(self) -> Any:
        """The model server, in the shapes that run one."""
        return getattr(self.app.state, "server", None)


# the shapes -------------------------------------------------------------------------

def serve(project: Project, *, poll: bool = True, model_path: str | None = None,
          poll_seconds: float | None = None, wait_for_model: bool = True) -> Process:
    """A model server replica (`tether serve`): serving, monitoring gauges, dashboard.

    `wait_for_model` as in `tether.serving.create_app` (a process behind a probe opens
    its port at once: False)."""
    from tether.serving import create_app

    registry = CollectorRegistry()
    monitor = Monitor(project, clock=project.clock)
    server = _ServerRef()
    collector = MonitoringCollector(monitor, server.versions, background=True)
    routes = _dashboard(project, monitor, on_registry_change=server.reload)
    app = create_app(project, registry=registry, collectors=[collector], routes=routes,
                     poll=poll, model_path=model_path, poll_seconds=poll_seconds,
                     lifespans=[_computing(collector)], wait_for_model=wait_for_model)
    server.app = app
    return Process("serve", project, app, metrics=registry, monitor=monitor)


def serve_folder(project: Project, model_path: str) -> Process:
    """`tether serve --model-path DIR` without a policy file: the folder's model alone.
    No registry stands behind it, so there is no training profile to monitor against and
    no dashboard: the server's own metrics only."""
    from tether.serving import create_app

    registry = CollectorRegistry()
    app = create_app(project, registry=registry, model_path=model_path, wait_for_model=False)
    return Process("serve", project, app, metrics=registry)


def controller(project: Project, *, servers: Sequence[str] = (), interval: float | None = None,
               lock_ttl: float = 15.0) -> Process:
    """The controller alone (`tether controller`): servers follow it through the registry
    and a push to their `/admin/reload`."""
    from tether.control.app import controller_app
    from tether.control.push import http_push

    registry = CollectorRegistry()
    monitor = Monitor(project, clock=project.clock)
    push = http_push(list(servers), project.settings.admin_token) if servers else None
    loop = _controller(project, monitor, registry, lock_ttl=lock_ttl, push=push)
    return Process("controller", project, controller_app(loop, registry, interval),
                   metrics=registry, controller=loop, monitor=monitor)


def up(project: Project, *, interval: float | None = None, poll: bool = True,
       lock_ttl: float = 15.0, poll_seconds: float | None = None,
       wait_for_model: bool = True) -> Process:
    """Server and controller in one process (`tether up`, `tether demo`)."""
    from tether.control.app import status_routes
    from tether.control.hooks import hook_routes
    from tether.control.triggers import Trigger, TriggerKind
    from tether.serving import create_app

    registry = CollectorRegistry()
    monitor = Monitor(project, clock=project.clock)
    loop = _controller(project, monitor, registry, lock_ttl=lock_ttl)
    server = _ServerRef()

    @asynccontextmanager
    async def run_controller(app: Starlette) -> AsyncIterator[None]:
        running = asyncio.get_running_loop()
        model_server = app.state.server

        def push() -> None:
            asyncio.run_coroutine_threadsafe(model_server.reload(), running).result(
                PUSH_TIMEOUT_SECONDS)

        def switch(version: int) -> None:
            asyncio.run_coroutine_threadsafe(model_server.switch_champion(version),
                                             running).result(PUSH_TIMEOUT_SECONDS)

        loop.push, loop.switch = push, switch
        async with loop.running(interval):
            yield

    def request_retrain(reason: str) -> None:
        loop.submit(Trigger(TriggerKind.MANUAL, reason))

    collector = MonitoringCollector(monitor, server.versions, background=True)
    routes: list[BaseRoute] = [*hook_routes(project, loop.submit), *status_routes(project)]
    routes += _dashboard(project, monitor, on_registry_change=server.reload)
    app = create_app(project, registry=registry, collectors=[collector], routes=routes,
                     poll=poll, poll_seconds=poll_seconds, retrain=request_retrain,
                     lifespans=[_computing(collector), run_controller],
                     wait_for_model=wait_for_model)
    server.app = app
    return Process("up", project, app, metrics=registry, controller=loop, monitor=monitor)


def replay(project: Project, *, retrain: Retrain | None = None) -> Process:
    """Server and controller for `tether replay`: the caller answers requests in process
    and calls `controller.tick()` itself, with `project.clock` moved by the history. No
    registry poller and no loop thread: the push is the server's in-process reload."""
    from tether.control.controller import Controller
    from tether.control.metrics import ControllerMetrics
    from tether.serving import create_app

    registry = CollectorRegistry()
    monitor = Monitor(project, clock=project.clock)
    loop = Controller(project, monitor=monitor, retrain=retrain,
                      metrics=ControllerMetrics(project.model_name, registry))
    app = create_app(project, registry=registry, poll=False)

    def push() -> None:
        app.state.server.reload_from_thread(PUSH_TIMEOUT_SECONDS)

    loop.push = push
    return Process("replay", project, app, metrics=registry, controller=loop, monitor=monitor)


def dashboard(project: Project, *, poll_seconds: float = 5.0) -> Process:
    """The dashboard alone (`tether dashboard`): read-only without the admin token."""
    from tether.dashboard.app import create_dashboard_app

    app = create_dashboard_app(project, admin_token=project.settings.admin_token,
                               poll_seconds=poll_seconds)
    return Process("dashboard", project, app)


# the parts --------------------------------------------------------------------------

def _controller(project: Project, monitor: Monitor, registry: CollectorRegistry, *,
                lock_ttl: float, push: Callable[[], None] | None = None) -> Controller:
    from tether.control.controller import Controller
    from tether.control.metrics import ControllerMetrics
    from tether.federated.sites import with_site_drift

    # a federated trainer with site_drift on: each site's own data summaries, too
    sites = with_site_drift(project, None)
    return Controller(project, push=push, monitor=monitor, lock_ttl=lock_ttl,
                      metrics=ControllerMetrics(project.model_name, registry),
                      watchers=[sites] if sites is not None else [])


def _dashboard(project: Project, monitor: Monitor, *,
               on_registry_change: Callable[[], Any]) -> list[BaseRoute]:
    """The dashboard's routes; its "Retrain now" goes where the app's `/trigger` goes."""
    from tether.dashboard import dashboard_routes

    return list(dashboard_routes(project, on_registry_change=on_registry_change,
                                 monitor=monitor))


class _ServerRef:
    """The model server of an app built later: what the collector and the dashboard's
    actions reach it through."""

    app: Starlette | None = None

    def versions(self) -> list[tuple[int, str]]:
        server = getattr(self.app.state, "server", None) if self.app is not None else None
        if server is None:
            return []
        return [(int(row["version"]), str(row["route"])) for row in server.table.describe()]

    async def reload(self) -> None:
        assert self.app is not None
        await self.app.state.server.reload()


def _computing(collector: MonitoringCollector) -> Callable[[Starlette],
                                                           Any]:
    """A lifespan that keeps the monitoring snapshots fresh in a thread of their own."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = threading.Thread(target=collector.run, args=(stop,), daemon=True,
                                  name="tether-monitoring")
        worker.start()
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(worker.join, 30)

    return lifespan
