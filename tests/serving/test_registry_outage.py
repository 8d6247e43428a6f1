"""A registry that goes away while `tether serve` runs, or before it starts.

Every part is real: an `mlflow server` process holding the registry, reached through a
loopback TCP proxy that refuses connections or accepts them and never answers (a frozen
or partitioned host), and `tether serve` in its own process with JSON logs. The server
keeps serving what it loaded and says so (`/ready`, `/health?verbose=1`, `/metrics`, one
log line per change of state), `/admin/reload` answers within its bound, and a server
that starts while the registry is away opens its port at once and says "not ready"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.conftest import write_project
from tests.serving.conftest import records
from tests.serving.processes import HANG, PASS, REFUSE, TcpProxy, Tether
from tether.config import load_config
from tether.net import free_port, wait_http
from tether.project import Project

pytestmark = pytest.mark.slow

TOKEN = "outage-token"
BIN = Path(sys.executable).parent
REGISTRY_TIMEOUT = 2.0
RELOAD_WAIT = 4.0
# the registry client's own retries (MLflow's defaults retry a refused connection for
# minutes); the bounds asserted here are the server's, whatever the client does
FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory,
                  registered: tuple[Path, dict[str, int]]) -> Iterator[tuple[str, int]]:
    """`mlflow server` on a copy of the registry of three versions; (url, version a)."""
    database, numbers = registered
    folder = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(database, folder / "mlflow.db")
    port = free_port()
    log = folder / "mlflow.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri",
             f"sqlite:///{folder / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", timeout=180, process=process, log=log)
        yield url, numbers["a"]
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def proxied(tmp_path: Path, mlflow_server: tuple[str, int],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, TcpProxy, int]]:
    """A project whose registry is the MLflow server behind a proxy; `a` is champion."""
    url, version = mlflow_server
    proxy = TcpProxy(int(url.rsplit(":", 1)[1]))
    folder = tmp_path / "project"
    write_project(folder, **{"serving.registry_timeout_seconds": REGISTRY_TIMEOUT,
                             "serving.reload_wait_seconds": RELOAD_WAIT})
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)
    environ = {"TETHER_TRACKING_URI": proxy.url}
    registry = Project(load_config(folder / "tether.yaml", environ=environ)).registry
    if registry.state().champion != version:  # the server is shared by this module's tests
        registry.promote(version, "outage test")
    try:
        yield folder, proxy, version
    finally:
        proxy.close()


def server_env(proxy: TcpProxy, **extra: str) -> dict[str, str]:
    return {"TETHER_TRACKING_URI": proxy.url, "TETHER_ADMIN_TOKEN": TOKEN,
            "TETHER_POLL_SECONDS": "0.5", "TETHER_LOG_FORMAT": "json", **extra}


def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - started


def metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def reachable(url: str) -> Any:
    return httpx.get(f"{url}/ready", timeout=10).json()["registry_reachable"]


def admin_reload(url: str) -> tuple[int, float, dict[str, Any]]:
    started = time.monotonic()
    answer = httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=60)
    return answer.status_code, time.monotonic() - started, answer.json()


def messages(server: Tether, prefix: str) -> list[dict[str, Any]]:
    return [r for r in server.json_lines() if str(r.get("message", "")).startswith(prefix)]


def test_a_running_server_serves_through_an_outage_and_says_so(
        proxied: tuple[Path, TcpProxy, int], cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    folder, proxy, version = proxied
    row = {"dataframe_records": records(cancer[0], 1)}
    server = Tether(folder, env=server_env(proxy, **FAIL_FAST))
    try:
        server.wait_ready()
        assert reachable(server.url) is True
        assert metric(server.url, "tether_registry_up") == 1.0
        proxy.set(HANG)
        until(lambda: reachable(server.url) is False, 30, "the server noticed the outage")

        # serving goes on, and every surface says the registry is away
        assert httpx.post(f"{server.url}/predict", json=row, timeout=10).status_code == 200
        ready = httpx.get(f"{server.url}/ready", timeout=10)
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "champion": version, "reason": None,
                                "registry_reachable": False}
        health = httpx.get(f"{server.url}/health", timeout=10)
        assert (health.status_code, health.text) == (200, "\n")
        verbose = httpx.get(f"{server.url}/health?verbose=1", timeout=10).json()
        assert verbose["status"] == "degraded"
        assert verbose["registry"]["reachable"] is False
        assert verbose["registry"]["down_since"] is not None
        assert verbose["versions"] == [{"version": version, "route": "champion",
                                        "weight": 1.0}]
        status, seconds, document = admin_reload(server.url)
        assert status in (202, 503), document
        assert seconds < RELOAD_WAIT + 3.0, f"/admin/reload took {seconds:.1f} s"
        if status == 503:
            assert document["error"] == "RegistryUnavailable"

        proxy.set(REFUSE)
        time.sleep(3.0)
        assert httpx.post(f"{server.url}/predict", json=row, timeout=10).status_code == 200
        status, seconds, document = admin_reload(server.url)
        assert status in (202, 503) and seconds < RELOAD_WAIT + 3.0, (status, seconds)
        assert metric(server.url, "tether_registry_up") == 0.0
        failed_reads = metric(server.url, "tether_registry_errors_total")
        assert failed_reads is not None and failed_reads >= 3

        proxy.set(PASS)
        until(lambda: reachable(server.url) is True, 60, "the server noticed the return")
        status, _, document = admin_reload(server.url)
        assert status == 200 and document["champion"] == version
        assert metric(server.url, "tether_registry_up") == 1.0
        assert httpx.get(f"{server.url}/health?verbose=1",
                         timeout=10).json()["mlflow"]["server_version"].startswith("3.")
    finally:
        server.stop()
    # one line when it went away and one when it came back, not one per failed poll
    assert len(messages(server, "registry unreachable")) == 1
    assert len(messages(server, "registry reachable again")) == 1
    access = [r for r in server.json_lines() if r.get("logger") == "tether.access"
              and r.get("path") == "/predict"]
    assert access and {(r["status"], r["model_version"], r["route"]) for r in access} == {
        (200, version, "champion")}
    assert all(r["latency_ms"] >= 0 for r in access)
    assert "mean radius" not in server.log.read_text()  # no feature is ever logged


def test_a_server_started_while_the_registry_is_away_listens_at_once(
        proxied: tuple[Path, TcpProxy, int], cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    folder, proxy, version = proxied
    proxy.set(HANG)
    # MLflow's own client settings (retries over minutes): the port must not wait for them
    server = Tether(folder, env=server_env(proxy))
    try:
        opened = server.listening(timeout=60)
        ready = httpx.get(f"{server.url}/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and ready.json()["reason"]
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        answer = httpx.post(f"{server.url}/predict",
                            json={"dataframe_records": records(cancer[0], 1)}, timeout=10)
        assert answer.status_code == 503 and answer.json()["error"] == "ModelNotReady"
        until(lambda: reachable(server.url) is False, 30, "the outage is reported")
        assert "registry unreachable" in httpx.get(f"{server.url}/ready",
                                                   timeout=10).json()["reason"]
        assert httpx.get(f"{server.url}/health?verbose=1",
                         timeout=10).json()["status"] == "not_ready"
        proxy.set(PASS)
        server.wait_ready(timeout=240)
        assert httpx.get(f"{server.url}/ready", timeout=10).json()["champion"] == version
    finally:
        server.stop()
    assert opened < 30, f"the port opened after {opened:.1f} s"
