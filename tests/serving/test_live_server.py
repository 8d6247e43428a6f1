"""End to end on a real uvicorn server on 127.0.0.1: swaps under load, shutdown flush."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from tests.serving.conftest import LiveServer, records
from tether.config import Durability
from tether.project import Project
from tether.serving import create_app

TOKEN = "live-token"


def test_hot_swaps_under_concurrent_requests_never_fail_a_request(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        live: Callable[[Starlette], LiveServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", TOKEN)
    features, _ = cancer
    served = Project.open(project.config.path)
    app = create_app(served, poll=False, registry=CollectorRegistry())
    bodies = [{"dataframe_records": records(features, n, start=n)} for n in (1, 3, 20)]

    async def load(client: httpx.AsyncClient, stop: asyncio.Event,
                   seen: list[tuple[int, str | None]]) -> None:
        i = 0
        while not stop.is_set():
            answer = await client.post("/invocations", json=bodies[i % len(bodies)])
            seen.append((answer.status_code, answer.headers.get("x-model-version")))
            i += 1

    async def scenario(url: str) -> list[tuple[int, str | None]]:
        seen: list[tuple[int, str | None]] = []
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            workers = [asyncio.create_task(load(client, stop, seen)) for _ in range(12)]
            for flip in range(8):
                target = versions["b"] if flip % 2 == 0 else versions["a"]
                await asyncio.to_thread(project.registry.promote, target, "swap test")
                reload = await client.post("/admin/reload",
                                           headers={"Authorization": f"Bearer {TOKEN}"})
                assert reload.json()["champion"] == target
                await asyncio.sleep(0.15)
            stop.set()
            await asyncio.gather(*workers)
        return seen

    with live(app) as server:
        seen = asyncio.run(scenario(server.url))
    assert len(seen) > 100
    assert {status for status, _ in seen} == {200}
    assert {version for _, version in seen} == {str(versions["a"]), str(versions["b"])}


def test_queued_predictions_are_written_on_shutdown(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        live: Callable[[Starlette], LiveServer]) -> None:
    features, _ = cancer
    # batched durability: nothing is flushed by size or time before the server stops
    options = project.policy.serving.model_copy(update={"log_flush_seconds": 300.0,
                                                        "log_batch_rows": 100_000,
                                                        "durability": Durability.BATCHED})
    app = create_app(project, poll=False, registry=CollectorRegistry(), options=options)

    async def predict(url: str) -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answers = await asyncio.gather(*[
                client.post("/predict", json={"dataframe_records": records(features, 7, i)})
                for i in range(40)])
        assert {a.status_code for a in answers} == {200}
        return [pid for answer in answers for pid in answer.json()["ids"]]

    server = live(app).__enter__()
    try:
        acknowledged = asyncio.run(predict(server.url))
        assert project.store.count_predictions(project.model_name) == 0
    finally:
        server.stop()
    logged = project.store.prediction_window(project.model_name)
    assert sorted(logged["id"]) == sorted(acknowledged)
    assert len(acknowledged) == 280
    assert set(logged.columns) >= {"mean radius", "worst symmetry", "score", "latency_ms"}


def test_a_ten_megabyte_body_gets_413_and_the_server_stays_up(
        project: Project, versions: dict[str, int], live: Callable[[Starlette], LiveServer],
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    app = create_app(project, poll=False, registry=CollectorRegistry())

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    with live(app) as server:
        declared = httpx.post(f"{server.url}/predict", content=b"x" * (10 * 1024 * 1024),
                              headers={"Content-Type": "application/json"}, timeout=30)
        streamed = httpx.post(f"{server.url}/invocations", content=chunks(),
                              headers={"Content-Type": "application/json"}, timeout=30)
        after = httpx.post(f"{server.url}/predict",
                           json={"dataframe_records": records(features, 1)}, timeout=30)
    assert (declared.status_code, streamed.status_code, after.status_code) == (413, 413, 200)
    assert "exceeds the limit of 4194304 bytes" in streamed.json()["message"]


@pytest.mark.parametrize("durability", [Durability.IDS, Durability.ACKED])
def test_which_answers_wait_for_their_commit(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        live: Callable[[Starlette], LiveServer], durability: Durability) -> None:
    features, _ = cancer
    # nothing is written by time or size: a row is in the store only if its answer waited
    options = project.policy.serving.model_copy(update={"log_flush_seconds": 300.0,
                                                        "log_batch_rows": 100_000,
                                                        "durability": durability})
    app = create_app(project, poll=False, registry=CollectorRegistry(), options=options)
    with live(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        mlflow_protocol = client.post("/invocations",
                                      json={"dataframe_records": records(features, 3)})
        assert mlflow_protocol.status_code == 200
        written = project.store.count_predictions(project.model_name)
        # /invocations answers carry no ids: under `ids` they leave before the commit
        assert written == (3 if durability is Durability.ACKED else 0)
        answer = client.post("/predict", json={"dataframe_records": records(features, 2, 3)})
        assert answer.status_code == 200
        ids = answer.json()["ids"]
        assert project.store.add_feedback([(pid, 1.0) for pid in ids]).unknown_ids == []
