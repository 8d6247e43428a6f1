"""The dashboard's routes: the page, its static files, the JSON API and the admin actions.

The server mounts them with `create_app(..., routes=dashboard_routes(...))`; `tether
dashboard` serves them alone. Every JSON endpoint documents itself in OpenAPI YAML
after `---` in its docstring, so Starlette's SchemaGenerator lists it. The admin actions
are guarded by the app's authentication backend (`requires(ADMIN)`), and every error is
the app's one error document.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tether import __version__, lifecycle
from tether.dashboard.payloads import (
    TimeRange,
    drift_payload,
    events_payload,
    state_payload,
    timeseries_payload,
)
from tether.errors import ControllerUnavailable, InputError, ModelNotFound
from tether.events import EventKind
from tether.monitoring.monitor import Monitor
from tether.project import Project
from tether.serving.admin import ADMIN_BODY_BYTES, ADMIN_LIMIT, NO_CONTROLLER, reason_of
from tether.serving.auth import ADMIN, requires
from tether.serving.http import read_json_object, shown

__all__ = ["STATIC_PREFIX", "JSONBody", "dashboard_routes"]

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/dashboard"
DEFAULT_ROLLBACK_REASON = "manual rollback from the dashboard"
DEFAULT_RETRAIN_REASON = "manual retrain from the dashboard"
EVENT_KINDS = tuple(kind.value for kind in EventKind)


class JSONBody(Response):
    """JSON through orjson: numpy numbers pass, NaN and infinity become null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY
                            | orjson.OPT_NON_STR_KEYS)


def dashboard_routes(
    project: Project,
    *,
    on_registry_change: Callable[[], Awaitable[None]] | None = None,
    request_retrain: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
    monitor: Monitor | None = None,
) -> list[BaseRoute]:
    """The page at `/`, its files under `/static/dashboard/`, `/api/*` and `/admin/*`.

    `monitor` (default: a new one) loads and keeps the versions' training profiles; pass
    the process's own to share them.
    """
    monitor = Monitor(project) if monitor is None else monitor
    page = _render_page(project, poll_seconds)

    async def call(function: Callable[..., dict[str, Any]], *args: Any) -> JSONBody:
        return JSONBody(await run_in_threadpool(function, *args))

    def retrainer(request: Request) -> Callable[[str], None] | None:
        """Who takes a manual retrain: the one given, else the app's (`/trigger`'s)."""
        return request_retrain or getattr(request.app.state, "retrain", None)

    def check_model(request: Request, *allowed: str) -> None:
        """The query has only `allowed` parameters (and `model`), each once, and `model`,
        when given, is this project's: a misspelt or repeated parameter is a 400, never
        silently left out of the answer."""
        _check_query(request, ("model", *allowed))
        asked = request.query_params.get("model")
        if asked is not None and asked != project.model_name:
            raise ModelNotFound(f"unknown model {asked!r}: this server tracks "
                                f"{project.model_name!r}")

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def api_state(request: Request) -> Response:
        """The serving state.
        ---
        summary: Champion and challenger with traffic share, rollout step and latest analysis
        tags: [dashboard]
        parameters:
          - {name: model, in: query, required: false, schema: {type: string},
             description: must be the project's model when given}
        responses:
          200: {description: "champion, challenger (mode, weight, step, steps, analysis),
                previous, versions, problems, controller (the conditions its last pass
                persisted, or null); `message` says when there is no version yet"}
          400: {description: an unknown or repeated query parameter}
          404: {description: unknown model}
        """
        check_model(request)
        return await call(state_payload, project)

    async def api_timeseries(request: Request) -> Response:
        """Per-version time series.
        ---
        summary: Request rate, error rate, p99 latency, label coverage, live and estimated metric
        description: >
          Added up from the running totals the store keeps per 5 seconds and per minute
          (other bucket widths: from the rows), per time bucket and version. Accuracy, precision,
          recall, F1, MAE and RMSE are exact over every labeled row; ROC AUC and the
          binary label-free estimates come from 100-bin score histograms; log loss, R2
          and multiclass metrics use the latest 500 labeled rows of each bucket, and a
          multiclass estimate the class probabilities of its latest 500 predictions.
          p99 latency comes from a latency histogram with bins 10% wide.
        tags: [dashboard]
        parameters:
          - {name: metric, in: query, schema: {type: string},
             description: "a metric of the model's task (default: the policy's primary)"}
          - {name: window, in: query, schema: {type: number, default: 3600},
             description: seconds back from now}
          - {name: bucket, in: query, schema: {type: number},
             description: "bucket width in seconds (default: about 120 points)"}
          - {name: model, in: query, schema: {type: string}}
        responses:
          200: {description: "series: [{version, points: [{t, requests, request_rate, errors,
                error_rate, p99_latency_ms, labeled, label_coverage, live_metric,
                live_samples, estimated_metric}]}], events: markers for the charts"}
          400: {description: "bad window, bucket or metric; an unknown or repeated parameter"}
          404: {description: unknown model}
        """
        check_model(request, "metric", "window", "bucket")
        params = request.query_params
        span = TimeRange.parse(params.get("window"), params.get("bucket"))
        return await call(timeseries_payload, project, span, params.get("metric"), monitor)

    async def api_drift(request: Request) -> Response:
        """Feature drift.
        ---
        summary: Drift share and the most drifted features, reference vs current distributions
        description: >
          Reference is the version's training profile from the registry; current is the
          monitoring window (monitoring.window_size latest predictions of that version).
          Judged as `tether monitor` judges it, with the policy's drift_alpha,
          drift_share_threshold and psi_threshold: KS test for numeric features and
          chi-square for categorical ones (Benjamini-Hochberg corrected) when either side
          has at most 1000 rows, Wasserstein and Jensen-Shannon distances above that.
          Histograms are on the bins PSI compares.
        tags: [dashboard]
        parameters:
          - {name: version, in: query, schema: {type: integer},
             description: "default: the champion"}
          - {name: top, in: query, schema: {type: integer, default: 6}}
          - {name: model, in: query, schema: {type: string}}
        responses:
          200: {description: "drift_share, threshold, alpha, drifted, prediction_drift,
                features: [{name, kind, method, score, threshold, p_value, p_adjusted, psi,
                drifted, reason, bins, reference, current}]"}
          400: {description: "bad version or top; an unknown or repeated parameter"}
          404: {description: unknown model or version}
        """
        check_model(request, "version", "top")
        version = _optional_int(request, "version", low=1)
        top = _optional_int(request, "top", low=1) or 6
        return await call(drift_payload, project, monitor, version, top)

    async def api_events(request: Request) -> Response:
        """The decision timeline.
        ---
        summary: Events newest first - triggers, gate verdicts, promotions, rollbacks
        tags: [dashboard]
        parameters:
          - {name: limit, in: query, schema: {type: integer, default: 200, maximum: 1000}}
          - {name: since, in: query, schema: {type: number}, description: unix seconds}
          - {name: kinds, in: query, schema: {type: string},
             description: "comma-separated, e.g. promoted,rolled_back"}
          - {name: model, in: query, schema: {type: string}}
        responses:
          200: {description: "events: [{id, ts, kind, version, reason, data}]"}
          400: {description: "bad limit, since or kinds; an unknown or repeated parameter"}
          404: {description: unknown model}
        """
        check_model(request, "limit", "since", "kinds")
        limit = min(_optional_int(request, "limit", low=1) or 200, 1000)
        since = _optional_float(request, "since")
        kinds = _kinds(request.query_params.get("kinds", ""))
        return await call(lambda: events_payload(project, limit=limit, since=since,
                                                 kinds=kinds))

    @requires(ADMIN)
    async def api_auth(request: Request) -> Response:
        """Check an admin token.
        ---
        summary: 200 when the bearer token is the admin token
        tags: [dashboard]
        security: [{bearer: []}]
        responses:
          200: {description: "admin: true, retrain_available: whether a controller runs here"}
          401: {description: missing or wrong token}
          403: {description: no TETHER_ADMIN_TOKEN configured on the server}
        """
        return JSONBody({"admin": True, "retrain_available": retrainer(request) is not None})

    @requires(ADMIN)
    async def admin_rollback(request: Request) -> Response:
        """Roll back the champion.
        ---
        summary: Put the previous version back as champion (admin token)
        tags: [dashboard, admin]
        security: [{bearer: []}]
        requestBody:
          content:
            application/json:
              schema: {type: object, properties: {reason: {type: string},
                       to: {type: integer}}}
        responses:
          200: {description: "rolled_back (the old champion), champion (the new one), reason"}
          400: {description: bad body}
          401: {description: missing or wrong token}
          403: {description: no TETHER_ADMIN_TOKEN configured}
          409: {description: nothing to roll back to}
        """
        body = await read_json_object(request, ADMIN_BODY_BYTES, ADMIN_LIMIT,
                                      fields=("reason", "to"))
        reason = reason_of(body, DEFAULT_ROLLBACK_REASON)
        target = body.get("to")
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise InputError(f"to: expected a version number, got {shown(target)}")
        bad, champion = await run_in_threadpool(lifecycle.rollback, project, reason, target)
        if on_registry_change is not None:
            await on_registry_change()
        return JSONBody({"rolled_back": bad, "champion": champion, "reason": reason})

    @requires(ADMIN)
    async def admin_retrain(request: Request) -> Response:
        """Ask the controller to retrain now.
        ---
        summary: Hand a manual retrain trigger to the controller (admin token)
        tags: [dashboard, admin]
        security: [{bearer: []}]
        requestBody:
          content:
            application/json:
              schema: {type: object, properties: {reason: {type: string}}}
        responses:
          202: {description: the trigger was handed to the controller}
          400: {description: bad body}
          401: {description: missing or wrong token}
          403: {description: no TETHER_ADMIN_TOKEN configured}
          503: {description: no controller runs in this process}
        """
        body = await read_json_object(request, ADMIN_BODY_BYTES, ADMIN_LIMIT,
                                      fields=("reason",))
        reason = reason_of(body, DEFAULT_RETRAIN_REASON)
        retrain = retrainer(request)
        if retrain is None:
            raise ControllerUnavailable(NO_CONTROLLER)
        await run_in_threadpool(retrain, reason)
        return JSONBody({"accepted": True, "reason": reason}, status_code=202)

    return [
        Route("/", index, methods=["GET"], include_in_schema=False),
        Route("/api/state", api_state, methods=["GET"]),
        Route("/api/timeseries", api_timeseries, methods=["GET"]),
        Route("/api/drift", api_drift, methods=["GET"]),
        Route("/api/events", api_events, methods=["GET"]),
        Route("/api/auth", api_auth, methods=["GET"]),
        Route("/admin/rollback", admin_rollback, methods=["POST"]),
        Route("/admin/retrain", admin_retrain, methods=["POST"]),
        Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    ]


def _render_page(project: Project, poll_seconds: float) -> str:
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return (template.replace("{{static}}", STATIC_PREFIX)
            .replace("{{version}}", __version__)
            .replace("{{model}}", _html_escape(project.model_name))
            .replace("{{poll_ms}}", str(int(poll_seconds * 1000))))


def _html_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _check_query(request: Request, allowed: tuple[str, ...]) -> None:
    names = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise InputError(f"unknown query parameter(s) {shown(unknown)}; allowed: "
                         f"{', '.join(allowed)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"query parameter(s) {shown(repeated)} given more than once; give "
                         "each once")


def _kinds(raw: str) -> list[str] | None:
    kinds = [kind.strip() for kind in raw.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in EVENT_KINDS]
    if unknown:
        raise InputError(f"kinds: unknown event kind(s) {shown(unknown)}; known: "
                         f"{', '.join(EVENT_KINDS)}")
    return kinds or None


def _optional_int(request: Request, name: str, *, low: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < low:
        raise InputError(f"{name}: expected a number >= {low}, got {raw!r}")
    return value


def _optional_float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{name}: expected a finite number, got {raw!r}")
    return value
