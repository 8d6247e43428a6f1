"""HTTP plumbing every tether app shares: bounded bodies, bounded JSON, the one error
document, request metrics.

Every 4xx and 5xx any route answers is `{"error": <kind>, "message": <what and how to fix
it>}`, rendered by `error_handlers()` from the `TetherError` tree (`tether.errors`); the
one exception is `/invocations` answering MLflow's own error documents, byte for byte.

Bodies are bounded twice: `BodyLimit` refuses a declared Content-Length over the app's
limit on every route before routing, and `read_body` stops reading at a route's limit
when no length was declared. JSON is parsed by orjson, whose parser is not recursive and
refuses nesting deeper than 1024 levels; a body handed to a recursive parser (MLflow's
`json.loads`) must first pass `check_depth` (at most `MAX_JSON_DEPTH` levels).
"""

from __future__ import annotations

import logging
import re
import reprlib
import time
from collections.abc import Callable, Collection
from http import HTTPStatus
from typing import Any

import numpy as np
import orjson
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.errors import InputError, PayloadTooDeep, PayloadTooLarge, TetherError, Unauthorized
from tether.logs import log_access
from tether.serving.metrics import ServingMetrics

__all__ = ["MAX_JSON_DEPTH", "BodyLimit", "Instrumentation", "check_depth", "check_fields",
           "error_document", "error_handlers", "json_depth", "json_response", "load_json",
           "read_body", "read_json_object", "shown"]

log = logging.getLogger("tether.serving")

MAX_JSON_DEPTH = 64  # a rank-60 tensor still fits; recursive parsers stay far from their limit
ORJSON_MAX_DEPTH = 1024


def json_response(document: Any, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY),
                    status_code=status_code, media_type="application/json", headers=headers)


SERVING_LIMIT = "serving.max_body_bytes in tether.yaml"

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 80, 80
_SHORT.maxlist = _SHORT.maxdict = 4


def shown(value: Any) -> str:
    """A client's value as an error message quotes it: short, and never recursing into
    whatever nesting the client sent.

    >>> shown("x" * 200)[:12], shown([[[[1]]]])
    ("'xxxxxxxxxxx", '[[[...]]]')
    """
    return _SHORT.repr(value)


async def read_body(request: Request, limit: int, setting: str = SERVING_LIMIT) -> bytes:
    """The whole body, refusing anything over `limit` bytes: on Content-Length before
    reading a byte, else as soon as the bytes read pass the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {int(declared)} bytes exceeds the limit of {limit} "
                              f"bytes ({setting})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes ({setting})")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int, setting: str = SERVING_LIMIT, *,
                           fields: Collection[str] = ()) -> dict[str, Any]:
    """An optional JSON object body (`{}` when empty) with only `fields` in it, bounded
    like every other body; a misspelt field is an error, never silently ignored."""
    body = await read_body(request, limit, setting)
    if not body.strip():
        return {}
    document = load_json(body)
    if not isinstance(document, dict):
        raise InputError(f"body: expected a JSON object, got {type(document).__name__}")
    check_fields("body", document, fields)
    return document


def check_fields(where: str, document: dict[str, Any], fields: Collection[str]) -> None:
    """`InputError` naming the fields of `document` that are not among `fields`: a
    misspelt field is an error, never silently ignored."""
    unknown = sorted(str(key) for key in set(document) - set(fields))
    if unknown:
        allowed = ", ".join(fields) if fields else "none (send no body)"
        raise InputError(f"{where}: unknown field(s) {shown(unknown)}; allowed: {allowed}")


def load_json(body: bytes, what: str = "body") -> Any:
    """`body` parsed by orjson: malformed JSON is an `InputError`, nesting deeper than
    orjson's 1024 levels a `PayloadTooDeep`.

    >>> load_json(b'{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> load_json(b"[" * 5000)
    Traceback (most recent call last):
    ...
    tether.errors.PayloadTooDeep: body: JSON nested deeper than 1024 levels
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise PayloadTooDeep(f"{what}: JSON nested deeper than {ORJSON_MAX_DEPTH} "
                                 "levels") from None
        raise InputError(f"{what}: malformed JSON: {exc}") from None


# a JSON string, escapes included (unrolled so the regex engine never backtracks)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def json_depth(body: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest, without parsing it (so it
    cannot recurse): strings removed, then a running sum over the brackets. About 12 ms
    per MB, on the paths that hand a body to a recursive parser only.

    >>> json_depth(b'{"a": [[1], "]]]"], "b": {"c": "[[[\\\\"{"}}')
    3
    """
    if b'"' in body:
        body = _STRING.sub(b"", body)
    brackets = np.frombuffer(body.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if brackets.size == 0:
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def check_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse a body nested deeper than `limit` before a recursive parser sees it."""
    depth = json_depth(body)
    if depth > limit:
        raise PayloadTooDeep(f"JSON nested {depth} levels deep; at most {limit} are "
                             "accepted")


def error_document(status: int, kind: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    """The one shape of every error answer: `{"error": kind, "message": message}`."""
    return json_response({"error": kind, "message": message}, status, headers)


async def _tether_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TetherError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return error_document(exc.status_code, type(exc).__name__, exc.message, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 405 and "Allow" in headers:
        message = f"{where}: method not allowed; this route takes {headers['Allow']}"
    elif exc.status_code == 404 and not _routed(request):
        paths = list(dict.fromkeys(getattr(route, "path", "") for route in request.app.routes))
        message = f"{where}: no such route; the routes are {', '.join(p for p in paths if p)}"
    return error_document(exc.status_code, HTTPStatus(exc.status_code).phrase, message,
                          headers)


def _routed(request: Request) -> bool:
    """Whether some route takes this path (its own 404 then says what was not found)."""
    return any(route.matches(request.scope)[0] is not Match.NONE
               for route in request.app.routes)


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error")
    return error_document(500, "InternalError", f"unexpected {type(exc).__name__}; the "
                          "server logged the details")


def error_handlers() -> dict[Any, Callable[..., Any]]:
    """Exception type -> response, looked up along the MRO at the edge only."""
    return {TetherError: _tether_error, HTTPException: _http_error, Exception: _unexpected}


class BodyLimit:
    """413 for any request whose declared Content-Length is over `limit`, on every route,
    before routing (a route that reads its body also stops at its own limit); 415 for a
    body sent with a Content-Encoding (gzip, br, ...), which no route decodes: read as it
    is, a compressed body was a puzzling parse error and an uncompressed one labelled
    compressed was taken as plain."""

    def __init__(self, app: ASGIApp, limit: int, setting: str = SERVING_LIMIT) -> None:
        self.app = app
        self.limit = limit
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answer = self._refusal(scope["headers"])
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: list[tuple[bytes, bytes]]) -> Response | None:
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return error_document(413, "PayloadTooLarge", f"body of {int(value)} bytes "
                                      f"exceeds the limit of {self.limit} bytes "
                                      f"({self.setting})")
            if name != b"content-encoding":
                continue
            coding = value.decode("latin-1").strip().lower()
            if coding not in ("", "identity"):
                return error_document(415, "UnsupportedMediaType", f"Content-Encoding "
                                      f"{coding!r} is not supported: send the body "
                                      "uncompressed, without a Content-Encoding header")
        return None


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
