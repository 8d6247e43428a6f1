"""The Helm chart's shape on one machine, every part a real process on 127.0.0.1:
`mlflow server` (PostgreSQL, moto's S3), N `tether serve` replicas, one `tether
controller` pushing to all of them, the store on PostgreSQL, nginx in front of the
replicas, Prometheus scraping each replica and the controller with the shipped rules,
Alertmanager with the shipped routing calling the controller's webhook."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fleet import nginx
from tests.processes import stop
from tests.stack import start_alertmanager, start_prometheus
from tether.config import load_config
from tether.control.push import http_push
from tether.net import free_port, wait_http
from tether.project import Project

CLI = "from tether.cli import main; main()"
ADMIN_TOKEN = "fleet-admin-token"
ALERTMANAGER_TOKEN = "fleet-alertmanager-token"


@dataclass
class Member:
    """One process of the fleet and where it listens."""

    name: str
    port: int
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Fleet:
    folder: Path
    env: dict[str, str]
    mlflow: dict[str, Any]
    replicas: list[Member] = field(default_factory=list)
    controller: Member | None = None
    balancer_port: int = 0
    prometheus_port: int = 0
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # the parts ---------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        """The project as the fleet's processes see it (a fresh read of the policy)."""
        return Project(load_config(self.folder / "tether.yaml", self.env))

    @property
    def url(self) -> str:
        """The Service: nginx in front of the replicas."""
        return f"http://127.0.0.1:{self.balancer_port}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def add_replica(self) -> Member:
        port = free_port()
        member = Member(f"replica-{len(self.replicas)}", port,
                        [sys.executable, "-c", CLI, "serve", "--port", str(port)],
                        self.folder / f"replica-{len(self.replicas)}.log")
        self.replicas.append(member)
        return member

    def start(self, member: Member, *, ready: str | None = "/ready",
              timeout: float = 180) -> Member:
        with member.log.open("ab") as out:
            member.process = subprocess.Popen(member.command, cwd=self.folder, env=self.env,
                                              stdout=out, stderr=subprocess.STDOUT)
        if ready is not None:
            wait_http(f"{member.url}{ready}", timeout=timeout, process=member.process,
                      log=member.log)
        return member

    def start_controller(self, *, interval: float = 0.5) -> Member:
        if self.controller is None:
            port = free_port()
            servers = ",".join(r.url for r in self.replicas)
            self.controller = Member("controller", port, [
                sys.executable, "-c", CLI, "controller", "--port", str(port), "--servers",
                servers, "--interval", str(interval), "--lock-ttl", "5"],
                self.folder / "controller.log")
        return self.start(self.controller, ready="/health")

    def start_balancer(self) -> None:
        self.balancer_port = free_port()
        balancer = nginx.start(self.folder / "nginx", self.balancer_port,
                               [r.address for r in self.replicas])
        self.others.append(balancer)
        wait_http(f"{self.url}/ready", timeout=30, process=balancer,
                  log=self.folder / "nginx" / "error.log")

    def start_monitoring(self, alert_for: Mapping[str, str]) -> None:
        assert self.controller is not None
        configs = self.folder / "monitoring"
        configs.mkdir(exist_ok=True)
        am_port, self.prometheus_port = free_port(), free_port()
        self.others.append(start_alertmanager(
            configs, am_port, f"{self.controller.url}/hooks/alertmanager", ALERTMANAGER_TOKEN))
        self.others.append(start_prometheus(
            configs, self.prometheus_port,
            {"tether-server": [r.address for r in self.replicas],
             "tether-controller": [self.controller.address]}, am_port, dict(alert_for)))
        wait_http(f"http://127.0.0.1:{am_port}/-/ready")
        wait_http(f"{self.prometheus}/-/ready")

    def close(self) -> None:
        members = [m for m in [self.controller, *self.replicas] if m is not None]
        for process in [*reversed(self.others), *(m.process for m in members if m.process)]:
            stop(process)

    # what the fleet does -------------------------------------------------------------------

    def push(self) -> None:
        """What the controller does after a decision: POST /admin/reload to every replica."""
        http_push([r.url for r in self.replicas], ADMIN_TOKEN)()

    def served(self, member: Member, timeout: float = 5.0) -> list[dict[str, Any]]:
        """What `member` serves: [{version, route, weight}], from its /version."""
        answer = httpx.get(f"{member.url}/version", timeout=timeout)
        return list(answer.json()["versions"])

    def champions(self) -> list[int | None]:
        """The version each replica answers with (`X-Model-Version` of GET /ping)."""
        found: list[int | None] = []
        for member in self.replicas:
            version = httpx.get(f"{member.url}/ping", timeout=5).headers.get("x-model-version")
            found.append(int(version) if version else None)
        return found

    def send(self, member: Member, sig: signal.Signals) -> None:
        assert member.process is not None
        member.process.send_signal(sig)

    def mlflow_signal(self, sig: signal.Signals) -> None:
        """Signal the MLflow server with its workers (its own process group)."""
        os.killpg(self.mlflow["process"].pid, sig)


def wait_for(what: str, condition: Callable[[], Any], timeout: float,
             interval: float = 0.2) -> Any:
    """Poll `condition` until it returns something true; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


class Convergence:
    """When each replica first answers with `version`: one thread per replica asks its
    GET /ping every few milliseconds and keeps the time its `X-Model-Version` changed."""

    def __init__(self, members: list[Member], version: int, *, every: float = 0.005) -> None:
        self.members = members
        self.version = str(version)
        self.every = every
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(m,), daemon=True)
                         for m in members]

    def __enter__(self) -> Convergence:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def wait(self, timeout: float) -> dict[str, float]:
        wait_for(f"every replica answers with v{self.version}",
                 lambda: len(self.seen) == len(self.members), timeout, interval=0.01)
        return dict(self.seen)

    def _watch(self, member: Member) -> None:
        with httpx.Client(base_url=member.url, timeout=2) as client:
            while not self._stop.is_set() and member.name not in self.seen:
                try:
                    answer = client.get("/ping")
                except httpx.HTTPError:
                    continue
                if answer.headers.get("x-model-version") == self.version:
                    self.seen[member.name] = time.monotonic()
                    return
                self._stop.wait(self.every)

