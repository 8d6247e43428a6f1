"""A whole federation on this machine: one SuperLink and one SuperNode per site, each a
real Flower process on 127.0.0.1 (free ports), as the demo, the tests and the benchmark
run it. In production the SuperLink runs on the platform (the Helm chart's
`flower.superlink`) and every SuperNode at its site; nothing here is needed there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tether.errors import TetherError
from tether.federated.environment import flower_environment
from tether.net import free_port

__all__ = ["LocalFederation", "node_config"]

START_TIMEOUT = 60.0


def node_config(values: Mapping[str, str | int | float]) -> str:
    """`--node-config` text: `key="string" key=number`.

    >>> node_config({"site": "hospital_01", "data-path": "/d/h1.csv", "seed": 3})
    'site="hospital_01" data-path="/d/h1.csv" seed=3'
    """
    parts = []
    for key, value in values.items():
        parts.append(f"{key}={value}" if isinstance(value, int | float)
                     else f'{key}="{value}"')
    return " ".join(parts)


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalFederation:
    """Start with `with LocalFederation(bin_dir, workdir, sites) as federation:`.

    `sites` maps a site name to its node config (its data paths); `address` is the
    SuperLink's (Fleet and Control API) `host:port`.
    """

    bin_dir: Path
    workdir: Path
    sites: dict[str, dict[str, str | int | float]]
    host: str = "127.0.0.1"
    port: int = 0
    processes: dict[str, _Process] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> LocalFederation:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, name: str, args: list[str]) -> _Process:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"{name}.log"
        handle = log.open("wb")
        # its own session, so that stopping it also stops the SuperExec and app
        # processes it starts
        popen = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 env=flower_environment(self.bin_dir,
                                                        self.workdir / "flwr-home"),
                                 cwd=self.workdir)
        handle.close()
        process = _Process(name, popen, log)
        self.processes[name] = process
        return process

    def start(self) -> None:
        self.port = self.port or free_port()
        superlink = self._spawn("superlink", [
            str(self.bin_dir / "flower-superlink"), "--insecure",
            "--disable-runtime-dependency-installation",
            "--host", self.host, "--port", str(self.port),
            "--database", str(self.workdir / "superlink-state.db")])
        self._wait_listening(superlink, self.port)
        for site in self.sites:
            self.start_site(site)

    def start_site(self, site: str) -> None:
        port = free_port()
        self._spawn(site, [
            str(self.bin_dir / "flower-supernode"), "--insecure",
            "--superlink", self.address, "--host", self.host, "--port", str(port),
            "--node-config", node_config({"site": site, **self.sites[site]})])

    def _wait_listening(self, process: _Process, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise TetherError(f"{process.name} exited with code {process.popen.returncode}"
                                  f"; its log: {process.log}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, port), 0.5):
                return
            time.sleep(0.2)
        raise TetherError(f"{process.name} did not listen on {self.host}:{port} within "
                          f"{START_TIMEOUT:g} s; its log: {process.log}")

    def stop_site(self, site: str, kill: bool = True) -> None:
        """Take a site away: SIGKILL (a crash, a cut cable) or SIGTERM (it leaves)."""
        process = self.processes.pop(site)
        self._stop(process, signal.SIGKILL if kill else signal.SIGTERM)

    def _stop(self, process: _Process, sig: signal.Signals) -> None:
        if process.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, sig)
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=10)
        else:
            # the group may still hold children the leader started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        for name in [n for n in self.processes if n != "superlink"]:
            self._stop(self.processes.pop(name), signal.SIGTERM)
        if "superlink" in self.processes:
            self._stop(self.processes.pop("superlink"), signal.SIGTERM)
