"""Local ports and readiness, for whatever starts a server and then talks to it.

- `bound_socket()`: a listening address on a port the OS picks, handed to the server
  itself (uvicorn's `sockets=`), so nobody can take the port in between (`tether demo`);
- `listening_socket(host, port)`: the same for an address a user chose (port 0: any free
  one), failing with one line that says why (`tether serve --port`);
- `free_port()`: a port number for a server in another process, which binds it itself;
- `wait_http(url)`: until the server answers (`tether dashboard --open` opens the page
  then), giving up with a clear error when it does not or its process dies.

>>> with bound_socket() as sock:
...     host, port = sock.getsockname()
>>> host, 1024 <= port <= 65535, 1024 <= free_port() <= 65535
('127.0.0.1', True, True)
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tether.errors import ConfigError

__all__ = ["bound_socket", "free_port", "listening_socket", "wait_http"]

LOOPBACK = "127.0.0.1"
LOG_TAIL_CHARS = 3000


def bound_socket(host: str = LOOPBACK) -> socket.socket:
    """A TCP socket bound to a free port of `host`, for a server in this process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: a free port; read the real one with
    `getsockname()`), for a server in this process.

    Raises `ConfigError` for a port outside 0-65535 or an address that cannot be bound.

    >>> with listening_socket("127.0.0.1", 0) as sock:
    ...     sock.getsockname()[1] > 0
    True
    >>> listening_socket("127.0.0.1", 70000)
    Traceback (most recent call last):
    ...
    tether.errors.ConfigError: port 70000 is outside 1-65535 (0 picks a free port)
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is outside 1-65535 (0 picks a free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port of `host` that was free a moment ago, for a server in another process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, *, timeout: float = 90.0, process: subprocess.Popen[Any] | None = None,
              log: Path | None = None, body: bytes | None = None,
              ready: Callable[[int], bool] = lambda status: status == 200,
              interval: float = 0.3) -> httpx.Response:
    """Ask `url` until its status is `ready` (default: 200) and return that answer.

    GET, or POST `body` as JSON when given. Raises RuntimeError as soon as `process`
    exits and TimeoutError after `timeout` seconds; both end with the last lines of
    `log` when given.

    >>> wait_http(f"http://127.0.0.1:{free_port()}/ready", timeout=0.5)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TimeoutError: http://127.0.0.1:.../ready did not answer within 0.5 s
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server of {url} exited with code {process.returncode}"
                               + _tail(log))
        try:
            answer = (httpx.get(url, timeout=2) if body is None else
                      httpx.post(url, content=body, timeout=5,
                                 headers={"Content-Type": "application/json"}))
            if ready(answer.status_code):
                return answer
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:g} s" + _tail(log))
        time.sleep(interval)


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
