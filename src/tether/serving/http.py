"""HTTP plumbing shared by the endpoints: bounded bodies, JSON answers, errors, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from http import HTTPStatus
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.errors import PayloadTooLarge, TetherError, Unauthorized
from tether.logs import log_access
from tether.serving.metrics import ServingMetrics

__all__ = ["Instrumentation", "error_handlers", "json_response", "read_body"]

log = logging.getLogger("tether.serving")


def json_response(document: Any, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY),
                    status_code=status_code, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing anything over `limit` bytes before reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {int(declared)} bytes exceeds the limit of {limit} "
                              "bytes (serving.max_body_bytes in tether.yaml)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes "
                                  "(serving.max_body_bytes in tether.yaml)")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None
           ) -> Response:
    return json_response({"error": kind, "message": message}, status, headers)


async def _tether_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TetherError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return _error(exc.status_code, type(exc).__name__, exc.message, headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail),
                  dict(exc.headers or {}))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("model server: unexpected error")
    return _error(500, "InternalError", f"unexpected {type(exc).__name__}; the server logged "
                  "the details")


def error_handlers() -> dict[Any, Callable[..., Any]]:
    """Exception type -> response, looked up along the MRO at the edge only."""
    return {TetherError: _tether_error, HTTPException: _http_error, Exception: _unexpected}


class Instrumentation:
    """Counts and times every request, stamps `X-Model-Version` on each response, and
    writes the access log: method, path, status, latency, the model version and route
    that answered (from the response's headers), the client's address; never the body."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, endpoints: Collection[str],
                 version: Callable[[], int | None]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = frozenset(endpoints)
        self.version = version
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in self.endpoints else "other"  # bounded label values
        started = time.perf_counter()
        status = 500
        served: tuple[str | None, str | None] = (None, None)

        async def stamped(message: Message) -> None:
            nonlocal status, served
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                version = headers.get("x-model-version")
                if version is None:
                    current = self.version()
                    if current is not None:
                        headers.append("X-Model-Version", str(current))
                else:
                    served = (version, headers.get("x-model-route"))
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            elapsed = time.perf_counter() - started
            key = (endpoint, scope["method"], status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self.metrics.http_requests.labels(endpoint, scope["method"],
                                                            str(status))
                self._counters[key] = counter
            counter.inc()
            timer = self._timers.get(endpoint)
            if timer is None:
                timer = self.metrics.http_duration.labels(endpoint)
                self._timers[endpoint] = timer
            timer.observe(elapsed)
            log_access(scope, status, elapsed, *served)
