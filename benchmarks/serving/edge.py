"""What the edge costs a request: the body limit, the authentication backend, random ids.

Run by hand from the repository root (about a minute):

    PYTHONPATH=src .venv/bin/python benchmarks/serving/edge.py [--rounds 15]

In one process, interleaved round by round so a busy neighbour slows both sides alike:
- the edge layers alone (`BodyLimit` + `TokenAuthentication`), and Starlette's own
  `AuthenticationMiddleware` with the same backend, around an app that answers at once,
  against that app bare;
- `POST /invocations` and `POST /predict` (1 row, LogisticRegression on breast-cancer
  data, the prediction log on SQLite) on `create_app` as shipped, against the same app
  with the two edge layers taken out;
- prediction ids: 128 random bits per id (`IdSource`) against the former per-process
  prefix and counter.
Each figure is the median over rounds of the mean time per request (or per call).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import statistics
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tether.config import load_config
from tether.project import Project
from tether.serving import create_app
from tether.serving.auth import TokenAuthentication, TokenBackend
from tether.serving.http import BodyLimit
from tether.serving.ids import IdSource

POLICY = """model: {name: bench, task: binary_classification, target: target}
trainer: train:train
data: {generator: tether.example.loans:generate, params: {n: 100}}
"""
HEADERS = [(b"host", b"bench"), (b"content-type", b"application/json"),
           (b"content-length", b"700"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]


def model_folder(folder: Path) -> tuple[Path, bytes]:
    import mlflow.sklearn
    import orjson
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features,
                                                                                  target)
    path = folder / "model"
    mlflow.sklearn.save_model(model, str(path), serialization_format="cloudpickle",
                              signature=infer_signature(features, model.predict(features)),
                              input_example=features.head(3))
    split = features.head(1).to_dict("split")
    body = orjson.dumps({"dataframe_split": {"columns": split["columns"],
                                             "data": split["data"]}})
    return path, body


async def per_call(call: Callable[[], Awaitable[Any]], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n


async def interleaved(sides: dict[str, Callable[[], Awaitable[Any]]], rounds: int,
                      n: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in sides}
    for call in sides.values():
        await per_call(call, n // 4)  # warm
    for _ in range(rounds):
        for name, call in sides.items():
            times[name].append(await per_call(call, n))
    return {name: statistics.median(values) for name, values in times.items()}


def bare_asgi_call(app: Any) -> Callable[[], Awaitable[None]]:
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": HEADERS,
             "query_string": b"", "asgi": {"version": "3.0"}}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    async def call() -> None:
        await app(dict(scope), receive, send)

    return call


async def edge_alone(rounds: int) -> dict[str, float]:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(b"{}", media_type="application/json")(scope, receive, send)

    backend = TokenBackend(admin="a", alertmanager="b", feedback="c")
    guarded = BodyLimit(TokenAuthentication(answer, backend=backend), limit=4 << 20)
    starlette = BodyLimit(AuthenticationMiddleware(answer, backend=backend), limit=4 << 20)
    return await interleaved({"bare": bare_asgi_call(answer),
                              "edge": bare_asgi_call(guarded),
                              "starlette": bare_asgi_call(starlette)}, rounds, 20_000)


def without_edge(app: Starlette) -> Starlette:
    edge = {BodyLimit, TokenAuthentication}
    app.user_middleware = [m for m in app.user_middleware if m.cls not in edge]
    return app


async def served(rounds: int, folder: Path, body: bytes) -> dict[str, dict[str, float]]:
    config = folder / "tether.yaml"
    config.write_text(POLICY)
    apps = {}
    for name in ("shipped", "no edge"):
        project = Project(load_config(config, environ={"TETHER_HOME": str(folder / name)}))
        app = create_app(project, registry=CollectorRegistry(), model_path=str(folder / "model"))
        apps[name] = app if name == "shipped" else without_edge(app)
    results: dict[str, dict[str, float]] = {}
    async with apps["shipped"].router.lifespan_context(apps["shipped"]), \
            apps["no edge"].router.lifespan_context(apps["no edge"]):
        clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                           base_url="http://bench") for name, app in apps.items()}
        for route in ("/invocations", "/predict"):
            def post(client: httpx.AsyncClient, route: str = route
                     ) -> Callable[[], Awaitable[Any]]:
                async def call() -> None:
                    answer = await client.post(route, content=body,
                                               headers={"Content-Type": "application/json"})
                    assert answer.status_code == 200, answer.text
                return call

            results[route] = await interleaved(
                {name: post(client) for name, client in clients.items()}, rounds, 300)
        for client in clients.values():
            await client.aclose()
    return results


def ids(rounds: int) -> dict[int, dict[str, float]]:
    prefix, counter = secrets.token_hex(6), itertools.count()

    def former(n: int) -> list[str]:
        return [f"{prefix}-{next(counter):012x}" for _ in range(n)]

    source = IdSource()
    out = {}
    for n in (1, 100):
        runs: dict[str, list[float]] = {"former": [], "random": []}
        for _ in range(rounds):
            runs["former"].append(min(timeit.repeat(lambda n=n: former(n), number=2000,
                                                    repeat=3)) / 2000)
            runs["random"].append(min(timeit.repeat(lambda n=n: source.take(n), number=2000,
                                                    repeat=3)) / 2000)
        out[n] = {name: statistics.median(values) for name, values in runs.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, body = model_folder(folder)
        edge = asyncio.run(edge_alone(rounds))
        routes = asyncio.run(served(rounds, folder, body))
    id_costs = ids(rounds)

    print("\n| what | baseline | with the change | difference | ratio |")
    print("|---|---|---|---|---|")
    us = 1e6
    for name, label in (("edge", "tether's"), ("starlette", "Starlette's")):
        print(f"| body limit + {label} authentication middleware around an empty app, per "
              f"request | {edge['bare'] * us:.1f} us | {edge[name] * us:.1f} us "
              f"| +{(edge[name] - edge['bare']) * us:.1f} us "
              f"| {edge[name] / edge['bare']:.2f} |")
    for route, figures in routes.items():
        base, shipped = figures["no edge"], figures["shipped"]
        print(f"| `POST {route}`, 1 row, per request | {base * us:.0f} us | {shipped * us:.0f} us "
              f"| {(shipped - base) * us:+.1f} us | {shipped / base:.3f} |")
    for n, figures in id_costs.items():
        print(f"| {n} prediction id(s) per request | {figures['former'] * us:.2f} us "
              f"| {figures['random'] * us:.2f} us "
              f"| {(figures['random'] - figures['former']) * us:+.2f} us "
              f"| {figures['random'] / figures['former']:.2f} |")


if __name__ == "__main__":
    main()
