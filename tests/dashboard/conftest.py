"""A real project history, built once per session, and real uvicorn servers over it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from tests.dashboard.history import History, build_history, build_project
from tether import lifecycle
from tether.dashboard.app import create_dashboard_app
from tether.net import bound_socket
from tether.project import Project

ADMIN_TOKEN = "s3cret-token"


@pytest.fixture(scope="session")
def _session_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TETHER_"):
                patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def built_history(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path,
                  _session_env: None) -> History:
    project = build_project(tmp_path_factory.mktemp("dashboard") / "project", mlflow_template)
    return build_history(project)


@pytest.fixture
def history(built_history: History) -> History:
    """The session's history with v3 champion and v1 previous, as built (restored after a
    test rolled back, by promoting v3 again through the lifecycle)."""
    project = built_history.project
    state = project.registry.state()
    if state.champion != 3 or state.previous != 1:
        lifecycle.promote(project, 3, reason="restore the test history")
    return built_history


@pytest.fixture
def empty_project(tmp_path: Path, mlflow_template: Path, _session_env: None) -> Project:
    return build_project(tmp_path / "empty", mlflow_template)


@dataclass
class Hooks:
    """What the server hands to the rest of tether: a reload and a retrain request."""

    reloads: int = 0
    retrains: list[str] = field(default_factory=list)

    async def reload(self) -> None:
        await asyncio.sleep(0)
        self.reloads += 1


@dataclass
class Served:
    url: str
    hooks: Hooks


@contextmanager
def serve(project: Project, *, admin_token: str | None, with_controller: bool = True,
          poll_seconds: float = 5.0) -> Iterator[Served]:
    """The dashboard app on a real uvicorn server on 127.0.0.1, in a thread."""
    hooks = Hooks()
    reload: Callable[[], Awaitable[None]] = hooks.reload
    app = create_dashboard_app(project, admin_token=admin_token, on_registry_change=reload,
                               request_retrain=hooks.retrains.append if with_controller else None,
                               poll_seconds=poll_seconds)
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield Served(url=f"http://127.0.0.1:{port}", hooks=hooks)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
