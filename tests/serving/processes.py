"""Real processes for the reliability tests: `tether serve` in its own process, and a
loopback TCP proxy that can cut a service off (refuse connections, or accept them and
never answer, as a frozen or partitioned host does)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tether.net import LOOPBACK, free_port

BIN = Path(sys.executable).parent
PASS, REFUSE, HANG = "pass", "refuse", "hang"


class TcpProxy:
    """127.0.0.1:`port` forwarded to `upstream`, with a switch.

    `pass` forwards; `refuse` closes the listening socket (connections are refused) and
    cuts every open connection; `hang` accepts connections and never answers, and cuts
    the open ones, so a client with a pooled connection must open a new one that hangs.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = (LOOPBACK, upstream_port)
        self.port = free_port()
        self.mode = PASS
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._closed = False
        self._listen()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def set(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            for sock in self._open:
                _close(sock)
            self._open.clear()
            if mode == REFUSE and self._listener is not None:
                _close(self._listener)
                self._listener = None
        if mode != REFUSE and self._listener is None:
            self._listen()

    def close(self) -> None:
        self._closed = True
        self.set(REFUSE)

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by set(REFUSE)
            with self._lock:
                self._open.append(client)
                mode = self.mode
            if mode == PASS:
                try:
                    upstream = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _close(client)
                    continue
                upstream.settimeout(None)
                with self._lock:
                    self._open.append(upstream)
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(source, target), daemon=True).start()
            # HANG: keep the socket open and never read from it


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class Tether:
    """`tether <command>` in its own process on a free port, its stderr in a file."""

    def __init__(self, folder: Path, *args: str, command: str = "serve",
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log = folder / f"tether-{command}-{self.port}.log"
        environ = {key: value for key, value in os.environ.items()
                   if not key.startswith("TETHER_")}
        environ.update(env or {})
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "tether"), command, "--host", LOOPBACK, "--port", str(self.port),
                 *args], cwd=folder, env=environ, stdout=out, stderr=subprocess.STDOUT)

    def listening(self, timeout: float = 120.0) -> float:
        """Seconds until the port accepts a connection (raises if the process dies)."""
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"tether exited with {self.process.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1):
                    return time.monotonic() - started
            except OSError:
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"port {self.port} not open after {timeout} s:\n"
                                       + self.log.read_text(errors="replace")[-3000:]
                                       ) from None
                time.sleep(0.05)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("not ready:\n" + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)
        self.process.wait(60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def json_lines(self) -> list[dict[str, Any]]:
        """The log as JSON records; a line that is not JSON fails the test."""
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]
