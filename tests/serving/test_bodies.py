"""Over-deep and over-large bodies on every route of every process shape: a 4xx, never a 5xx.

Each shape (`tether serve`, `tether up`, `tether controller`, `tether dashboard`) is built
as its command builds it and served by a real uvicorn on loopback; every route and method
gets bodies nested past every parser's limit and bodies over every size limit, with the
right credentials (so the body is what is judged). A raw socket declares a 300 MB body and
sends a few bytes: the answer must come without the server reading the rest.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from tests.serving.conftest import LiveServer
from tether import apps
from tether.control.hooks import MAX_BODY
from tether.dashboard.routes import STATIC_PREFIX
from tether.project import Project
from tether.serving import create_app
from tether.serving.admin import ADMIN_BODY_BYTES
from tether.serving.auth import sign

ADMIN_TOKEN = "admin-s3cret"
ALERTMANAGER_TOKEN = "am-s3cret"
FEEDBACK_TOKEN = "fb-s3cret"
GITHUB_SECRET = "gh-s3cret"
DECLARED = 300_000_000


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


DEEP_BODIES = {
    "unterminated 100k": b"[" * 100_000,
    "1025 levels": _nested(1025),
    "object of 2000 levels": b'{"a": ' + _nested(2000) + b"}",
    # orjson takes 900 levels: the fast path refuses the table, then MLflow's recursive
    # parser would have been handed it
    "a table 900 deep": (b'{"dataframe_split": {"columns": ["mean radius"], "data": '
                         + _nested(900) + b"}}"),
    "a table 70 deep": (b'{"dataframe_split": {"columns": ["mean radius"], "data": '
                        + _nested(70) + b"}}"),
    "labels 900 deep": b'{"labels": ' + _nested(900) + b"}",
}


def _headers(path: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "repository_dispatch"}
    if path == "/hooks/github":
        headers["X-Hub-Signature-256"] = sign(GITHUB_SECRET, body)
    else:
        token = {"/hooks/alertmanager": ALERTMANAGER_TOKEN,
                 "/feedback": FEEDBACK_TOKEN}.get(path, ADMIN_TOKEN)
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _operations(app: Starlette) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Mount) and route.path == STATIC_PREFIX:
            found.append(("GET", f"{STATIC_PREFIX}/dashboard.js"))
        elif isinstance(route, Route):
            found += [(method, route.path) for method in sorted(route.methods or ())
                      if method != "HEAD"]
    return found


def _declare(url: str, method: str, path: str, headers: dict[str, str]) -> int:
    """Send headers announcing DECLARED bytes and a few bytes of them; the status line."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {DECLARED}",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall("\r\n".join(lines).encode() + b"[" * 1024)
        status_line = conn.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def _chunks(limit: int) -> Iterator[bytes]:
    sent = 0
    while sent <= limit:
        yield b" " * 65536
        sent += 65536


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("TETHER_ALERTMANAGER_TOKEN", ALERTMANAGER_TOKEN)
    monkeypatch.setenv("TETHER_FEEDBACK_TOKEN", FEEDBACK_TOKEN)
    monkeypatch.setenv("TETHER_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)


def _shape(name: str, project: Project) -> tuple[Starlette, int, str]:
    """The app, its body limit and a route that answers 200, as `tether serve` / `up` /
    `controller` / `dashboard` build them."""
    fresh = Project.open(project.config.path)
    limit = fresh.policy.serving.max_body_bytes
    if name == "serve":
        return apps.serve(fresh, poll=False).app, limit, "/health"
    if name == "up":
        return apps.up(fresh, interval=3600, poll=False).app, limit, "/health"
    if name == "dashboard":
        return apps.dashboard(fresh).app, ADMIN_BODY_BYTES, "/api/state"
    return apps.controller(fresh, interval=3600).app, MAX_BODY, "/health"


@pytest.mark.parametrize("shape", ["serve", "up", "controller", "dashboard"])
def test_every_route_answers_deep_and_large_bodies_with_a_4xx(
        shape: str, project: Project, versions: dict[str, int], tokens: None,
        caplog: pytest.LogCaptureFixture) -> None:
    app, limit, alive_path = _shape(shape, project)
    operations = _operations(app)
    assert [path for method, path in operations if method == "POST"]
    answers: dict[tuple[str, str, str], tuple[int, Any]] = {}
    with caplog.at_level(logging.ERROR), LiveServer(app) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for method, path in operations:
                for name, body in DEEP_BODIES.items():
                    answer = client.request(method, path, content=body,
                                            headers=_headers(path, body))
                    answers[(method, path, name)] = (answer.status_code, _document(answer))
                if method == "POST":
                    answer = client.request(method, path, content=_chunks(limit),
                                            headers=_headers(path, b""))
                    answers[(method, path, "chunked over the limit")] = (
                        answer.status_code, _document(answer))
                answers[(method, path, "300 MB declared")] = (
                    _declare(server.url, method, path, _headers(path, b"")), None)
            alive = client.get(alive_path)
        assert server.thread.is_alive()
    assert alive.status_code == 200
    server_errors = {key: value for key, value in answers.items() if value[0] >= 500}
    assert server_errors == {}, server_errors
    for (method, path, name), (status, document) in answers.items():
        if name == "300 MB declared":
            assert status == 413, (method, path)
        elif method == "POST":
            # the right credentials were sent: the body itself is refused
            assert status in (400, 413), (method, path, name, status, document)
            assert set(document) == {"error", "message"}, (method, path, name, document)
    kinds = {name: {document["error"] for (method, _, body), (_, document) in answers.items()
                    if method == "POST" and body == name}
             for name in ("1025 levels", "object of 2000 levels", "unterminated 100k")}
    assert kinds["1025 levels"] == kinds["object of 2000 levels"] == {"PayloadTooDeep"}
    # 100 kB is also over the admin routes' 64 kB
    assert kinds["unterminated 100k"] in ({"PayloadTooDeep"}, {"PayloadTooLarge"},
                                          {"PayloadTooDeep", "PayloadTooLarge"})
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def _document(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text[:200]


def test_a_deep_body_on_invocations_is_a_400_and_the_connection_stays_usable(
        project: Project, versions: dict[str, int], cancer: Any) -> None:
    """A deep body used to be a 500 from MLflow's recursive parser, after which the
    server closed the keep-alive connection under the client's next request."""
    import orjson

    from tests.serving.conftest import records

    features, _ = cancer
    good = orjson.dumps({"dataframe_records": records(features, 1)})
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with LiveServer(app) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            replies = conn.makefile("rb")
            answers = []
            for route, body in (("/invocations", b"[" * 100_000), ("/predict", b"[" * 100_000),
                                ("/feedback", b"[" * 100_000), ("/invocations", good)):
                conn.sendall(f"POST {route} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                             f"application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                             .encode() + body)
                answers.append(_read_response(replies))
    assert [(status, document.get("error")) for status, document in answers[:3]] == [
        (400, "PayloadTooDeep")] * 3
    assert answers[3][0] == 200 and len(answers[3][1]["predictions"]) == 1


def _read_response(replies: Any) -> tuple[int, Any]:
    import orjson

    status = int(replies.readline().split()[1])
    length = 0
    while (line := replies.readline().strip()):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, orjson.loads(replies.read(length))


@pytest.mark.parametrize("shape", ["serve", "up", "controller", "dashboard"])
def test_encoded_bodies_wrong_methods_and_unknown_paths_say_what_to_do(
        shape: str, project: Project, versions: dict[str, int], tokens: None) -> None:
    import gzip

    app, _, _ = _shape(shape, project)
    posts = [path for method, path in _operations(app) if method == "POST"]
    gets = {path for method, path in _operations(app) if method == "GET"}
    body = b'{"reason": "x"}'
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        # read as it came, a gzip body was a puzzling parse error, and a plain body
        # labelled br was taken as plain
        encoded = {(path, coding): client.post(path, content=data, headers={
            **_headers(path, data), "Content-Encoding": coding})
            for path in posts for coding, data in (("gzip", gzip.compress(body)), ("br", body))}
        wrong_method = {path: client.get(path, headers=_headers(path, b""))
                        for path in posts if path not in gets}
        nowhere = client.get("/predictt")
    for (path, coding), answer in encoded.items():
        assert answer.status_code == 415, (path, coding)
        assert answer.json() == {"error": "UnsupportedMediaType", "message": (
            f"Content-Encoding {coding!r} is not supported: send the body uncompressed, "
            "without a Content-Encoding header")}
    assert wrong_method
    for path, answer in wrong_method.items():
        assert answer.status_code == 405
        assert answer.json()["message"] == (f"GET {path}: method not allowed; this route "
                                            "takes POST")
    assert nowhere.status_code == 404
    assert nowhere.json()["message"].startswith("GET /predictt: no such route; the routes are ")
    assert all(path in nowhere.json()["message"] for path in posts)
