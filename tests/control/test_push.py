"""The controller's push reaches every server at once: real HTTP servers on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tether.control.push import PushFailed, http_push
from tether.net import free_port

REPLICAS = 3


@pytest.fixture
def replicas() -> Iterator[tuple[list[str], list[str]]]:
    """Three servers whose /admin/reload answers only once all three were asked (a
    barrier): a push that waits for one answer before asking the next never gets one."""
    barrier = threading.Barrier(REPLICAS, timeout=10)
    seen: list[str] = []

    class Reload(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            try:
                barrier.wait()
                status = 200
            except threading.BrokenBarrierError:
                status = 503
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", free_port()), Reload) for _ in range(REPLICAS)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers], seen
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_every_server_is_asked_before_any_answers(
        replicas: tuple[list[str], list[str]]) -> None:
    urls, seen = replicas
    http_push(urls, "admin-token", timeout=15)()
    assert seen == ["Bearer admin-token"] * REPLICAS


def test_failures_are_listed_together_and_the_others_still_reached(
        replicas: tuple[list[str], list[str]]) -> None:
    urls, seen = replicas
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PushFailed) as failed:
        http_push([urls[0], gone, urls[1]], None, timeout=15)()
    # two of three barrier parties came: both waited, then answered 503
    assert str(failed.value) == (f"reload push failed for {urls[0]}: HTTP 503, "
                                 f"{gone}: ConnectError, {urls[1]}: HTTP 503")
    assert seen == ["", ""]
