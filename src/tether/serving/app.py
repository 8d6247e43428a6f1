"""The ASGI app: MLflow's scoring protocol, tether's routes, metrics and admin.

`create_app(project)` builds everything once; handlers only read the current routing
table. Extra routes (the controller's hooks, the dashboard) and extra Prometheus
collectors (monitoring) join the same app and the same `/metrics`, behind the same
authentication backend (`tether.serving.auth`) and the same error table.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from tether import __version__
from tether.config import ServingPolicy
from tether.errors import InputError, InputRefused, PayloadTooLarge, UnsupportedMediaType
from tether.project import Project
from tether.registry import mlflow_version
from tether.serving.admin import (
    ADMIN_BODY_BYTES,
    ADMIN_LIMIT,
    Retrain,
    forward_to,
    trigger_endpoint,
)
from tether.serving.auth import ADMIN, FEEDBACK, TokenBackend, auth_middleware, requires
from tether.serving.health import TRUE_WORDS, HealthReport
from tether.serving.http import (
    BodyLimit,
    Instrumentation,
    check_fields,
    error_handlers,
    json_response,
    load_json,
    read_body,
    read_json_object,
    shown,
)
from tether.serving.ids import reserved_suffix
from tether.serving.metrics import ServingMetrics
from tether.serving.openapi import docs_page, openapi_document
from tether.serving.protocol import JSON, check_for_mlflow, media_type, parse_body
from tether.serving.server import ModelServer, Served

__all__ = ["create_app"]

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[Any]]


class NoTrailingSlash:
    """`POST /predict/` is `POST /predict` (hand-built FastAPI services route with the
    slash, and their clients keep it): answered, not redirected, since a redirected POST
    loses its body in many clients."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/",
                     "raw_path": scope.get("raw_path", b"").rstrip(b"/") or b"/"}
        await self.app(scope, receive, send)


def create_app(project: Project, *, registry: CollectorRegistry | None = None,
               collectors: Sequence[Collector] = (), routes: Sequence[BaseRoute] = (),
               poll: bool = True, model_path: str | None = None,
               options: ServingPolicy | None = None, poll_seconds: float | None = None,
               lifespans: Sequence[Lifespan] = (), auth: TokenBackend | None = None,
               retrain: Retrain | None = None, wait_for_model: bool = True) -> Starlette:
    """The model server for `project`.

    `model_path` (or env `MODEL_PATH`) serves one downloaded MLflow model folder and does
    not follow the registry. `lifespans` are entered after the server has started (an
    embedded controller) and left before it stops. `auth` (default: from the project's
    settings) guards every protected route, `routes` included. `retrain` takes
    `POST /trigger` and the dashboard's retrain (default: forward to
    `TETHER_CONTROLLER_URL` when set, else 503); it is `app.state.retrain`. With
    `wait_for_model` the app takes requests only once the first load has ended (what
    code in this process wants); without, at once, saying "not ready" until the model
    is there (what a process behind a probe wants: `tether serve` and `tether up`).
    """
    registry = registry if registry is not None else CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    metrics = ServingMetrics(registry)
    options = options or project.policy.serving
    server = ModelServer(project, metrics, options=options,
                         model_path=model_path or os.environ.get("MODEL_PATH") or None,
                         poll_seconds=poll_seconds)
    settings = project.settings
    auth = auth if auth is not None else TokenBackend.from_settings(settings)
    if retrain is None and settings.controller_url:
        retrain = forward_to(settings.controller_url, settings.admin_token)
    handlers = _Handlers(server, project, registry, options)
    own = [
        Route("/invocations", handlers.invocations, methods=["POST"]),
        Route("/predict", handlers.predict, methods=["POST"]),
        Route("/feedback", handlers.feedback, methods=["POST"]),
        Route("/ping", handlers.ping, methods=["GET"]),
        Route("/health", handlers.health, methods=["GET"]),
        Route("/ready", handlers.ready, methods=["GET"]),
        Route("/version", handlers.version, methods=["GET"]),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/openapi.json", handlers.openapi, methods=["GET"], include_in_schema=False),
        Route("/docs", handlers.docs, methods=["GET"], include_in_schema=False),
        Route("/admin/reload", handlers.reload, methods=["POST"]),
        Route("/reload-model", handlers.reload, methods=["POST"], include_in_schema=False),
        Route("/trigger", trigger_endpoint(retrain), methods=["POST"],
              include_in_schema=False),
    ]
    all_routes = [*own, *routes]
    handlers.document_routes(routes)
    endpoints = [path for route in all_routes if (path := getattr(route, "path", None))]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start(poll=poll, wait=wait_for_model)
        try:
            async with AsyncExitStack() as stack:
                for extra in lifespans:
                    await stack.enter_async_context(extra(app))
                yield
        finally:
            await server.stop()

    def champion_version() -> int | None:
        champion = server.table.champion
        return champion.version if champion is not None else None

    app = Starlette(
        routes=all_routes,
        middleware=[Middleware(NoTrailingSlash),
                    Middleware(Instrumentation, metrics=metrics, endpoints=endpoints,
                               version=champion_version),
                    Middleware(BodyLimit, limit=options.max_body_bytes),
                    auth_middleware(auth)],
        exception_handlers=error_handlers(),
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.metrics = metrics
    app.state.registry = registry
    app.state.retrain = retrain  # also the dashboard's "Retrain now"
    return app


class _Handlers:
    def __init__(self, server: ModelServer, project: Project, registry: CollectorRegistry,
                 options: ServingPolicy) -> None:
        self.server = server
        self.project = project
        self.registry = registry
        self.options = options
        self._health = HealthReport(project, options)
        self.document_routes(())

    def document_routes(self, routes: Sequence[BaseRoute]) -> None:
        """The OpenAPI document: tether's own routes plus the docstrings of extra ones."""
        document = openapi_document()
        extra = SchemaGenerator({"openapi": "3.0.0"}).get_schema(list(routes))
        document["paths"].update(_string_keys(extra.get("paths", {})))
        self._openapi = json_response(document).body
        self._docs = docs_page(document)

    # MLflow's protocol -----------------------------------------------------------------

    async def invocations(self, request: Request) -> Response:
        body = await read_body(request, self.options.max_body_bytes)
        content_type = request.headers.get("content-type")
        if content_type is None:
            raise UnsupportedMediaType("no content type: send the header Content-Type: "
                                       "application/json (curl: -H 'Content-Type: "
                                       "application/json') or Content-Type: text/csv")
        try:
            if not _plain(content_type):
                raise InputError("content type parameters: MLflow answers these")
            payload = parse_body(body, content_type, max_rows=self.options.max_rows)
            served = await self.server.predict(payload, with_ids=False)
        except InputRefused:
            raise
        except InputError:
            # anything the fast path does not take as-is is answered by MLflow's own code,
            # so clients see exactly what `mlflow models serve` would say, unless MLflow
            # would crash on it or read it wrong
            champion = self.server.table.champion
            if champion is not None:  # ~12 ms per MB, off the event loop
                await run_in_threadpool(check_for_mlflow, body, content_type,
                                        champion.validator, max_rows=self.options.max_rows)
            answer = await self.server.score_like_mlflow(body, content_type)
            return Response(answer.body, status_code=answer.status,
                            media_type=answer.media_type)
        return json_response({"predictions": served.prediction.values.tolist()},
                             headers=_version_header(served))

    async def ping(self, _request: Request) -> Response:
        return Response("\n", media_type=JSON)

    async def health(self, request: Request) -> Response:
        """MLflow's liveness answer; with `?verbose=1` what is served, the registry's
        reachability and the MLflow versions (for people, not probes)."""
        if request.query_params.get("verbose", "").lower() not in TRUE_WORDS:
            return Response("\n", media_type=JSON)
        return json_response(await self._health.document(self.server))

    # tether's routes -------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        body = await read_body(request, self.options.max_body_bytes)
        payload = parse_body(body, request.headers.get("content-type"),
                             max_rows=self.options.max_rows, extra_keys={"ids"}, flat=True)
        served = await self.server.predict(payload)
        document: dict[str, Any] = {"predictions": served.prediction.values.tolist(),
                                    "ids": served.ids}
        if served.prediction.scores is not None:
            document["scores"] = served.prediction.scores.tolist()
        if served.prediction.probabilities is not None:
            document["probabilities"] = served.prediction.probabilities.tolist()
        document["model_version"] = served.version
        document["route"] = served.route
        return json_response(document, headers=_version_header(served))

    @requires(FEEDBACK)
    async def feedback(self, request: Request) -> Response:
        body = await read_body(request, self.options.max_body_bytes)
        if media_type(request.headers.get("content-type")) != JSON:
            raise UnsupportedMediaType("feedback: send the header Content-Type: application/json "
                                       "(curl: -H 'Content-Type: application/json')")
        labels = _labels(body, self.options.max_rows)
        result = await self.server.feedback(labels)
        return json_response({"accepted": result.accepted, "unknown_ids": result.unknown_ids})

    async def ready(self, _request: Request) -> Response:
        snapshot = self.server.snapshot()
        ready = bool(snapshot["ready"])
        registry = snapshot["registry"]
        return json_response({"ready": ready, "champion": snapshot["champion"],
                              "reason": snapshot["reason"],
                              "registry_reachable": registry and registry["reachable"]},
                             200 if ready else 503)

    async def version(self, _request: Request) -> Response:
        snapshot = self.server.snapshot()
        return json_response({"tether": __version__, "mlflow": mlflow_version(),
                              "model": snapshot["model"], "source": snapshot["source"],
                              "versions": snapshot["served"], "loaded": snapshot["loaded"]})

    async def metrics(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, _request: Request) -> Response:
        return Response(self._openapi, media_type=JSON)

    async def docs(self, _request: Request) -> Response:
        return HTMLResponse(self._docs)

    @requires(ADMIN)
    async def reload(self, request: Request) -> Response:
        """Reload now; 200 when done within serving.reload_wait_seconds, else 202 while
        it goes on in the background. An unreachable registry is a 503."""
        await read_json_object(request, ADMIN_BODY_BYTES, ADMIN_LIMIT)  # none, or {}
        wait = self.options.reload_wait_seconds
        if await self.server.reload_within(wait):
            return json_response(self.server.snapshot())
        return json_response({**self.server.snapshot(), "status": "reloading",
                              "message": f"the reload did not finish within {wait:g} s "
                                         "(serving.reload_wait_seconds); it goes on in the "
                                         "background and /ready tells when it is done"},
                             202)


def _version_header(served: Served) -> dict[str, str]:
    """Which version and route (champion, canary) answered: for clients and the access
    log."""
    return {"X-Model-Version": str(served.version), "X-Model-Route": served.route}


def _plain(content_type: str) -> bool:
    """No parameters but a UTF-8 charset: what the fast path reads like MLflow does."""
    _, *parameters = (part.strip() for part in content_type.split(";"))
    return all(p.lower() in ("charset=utf-8", "") for p in parameters)


def _labels(body: bytes, max_rows: int) -> list[tuple[str, Any]]:
    if not body.strip():
        raise InputError('empty body: send {"labels": [{"id": ..., "label": ...}, ...]}')
    document = load_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("labels"), list):
        raise InputError('expected {"labels": [{"id": ..., "label": ...}, ...]}')
    check_fields("body", document, ("labels",))
    items = document["labels"]
    if len(items) > max_rows:
        raise PayloadTooLarge(f"{len(items)} labels exceed the limit of {max_rows} per request")
    labels: list[tuple[str, Any]] = []
    first: dict[str, int] = {}  # id -> index of its first label in this request
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "label" not in item:
            raise InputError(f"labels[{index}]: expected an object with 'id' and 'label'")
        check_fields(f"labels[{index}]", item, ("id", "label"))
        pid, label = item["id"], item["label"]
        if isinstance(pid, bool) or not isinstance(pid, str | int):
            raise InputError(f"labels[{index}].id: expected a string, got "
                             f"{type(pid).__name__}")
        if not isinstance(label, int | float | str):  # bool is an int
            raise InputError(f"labels[{index}].label: expected a class (a string or a "
                             f"number) or a number, got {type(label).__name__} "
                             f"{shown(label)}")
        text = str(pid)
        suffix = reserved_suffix(text)
        if suffix is not None:
            raise InputError(f"labels[{index}].id: {text!r} names one of tether's own rows "
                             f"(ids ending in {suffix!r}); label the request's id "
                             f"{text.removesuffix(suffix)!r}, which labels both")
        seen = first.setdefault(text, index)
        if seen != index and labels[seen][1] != label:
            raise InputError(f"labels[{seen}] and labels[{index}] give id {text!r} two labels "
                             f"({shown(labels[seen][1])} and {shown(label)}); send one label "
                             "per id")
        labels.append((text, label))
    return labels


def _string_keys(value: Any) -> Any:
    """YAML docstrings read `200:` as an int; JSON object keys are strings."""
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value
