"""Canary and shadow routing, failures of models on traffic and at load, rollback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from tests.serving.conftest import BIG, BREAK_ENV, records, wait_for
from tether.project import Project
from tether.registry import RolloutSpec
from tether.serving import SHADOW_SUFFIX, create_app
from tether.serving.routing import RoutingTable, canary_point


@pytest.fixture
def app_client(project: Project) -> Iterator[TestClient]:
    app = create_app(project, poll=False, registry=CollectorRegistry())
    with TestClient(app) as client:
        yield client


def reload(client: TestClient) -> None:
    client.portal.call(client.app.state.server.reload)  # type: ignore[union-attr, attr-defined]


def sample(client: TestClient, name: str, labels: dict[str, str]) -> float | None:
    registry: CollectorRegistry = client.app.state.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, labels)


def test_canary_share_follows_the_weight_and_is_stable_per_id() -> None:
    share = sum(canary_point(f"id-{i}") < 0.2 for i in range(20_000)) / 20_000
    assert abs(share - 0.2) < 0.01
    assert RoutingTable().mode is None


def test_canary_split_over_http(app_client: TestClient, project: Project,
                                versions: dict[str, int],
                                cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    project.registry.start_rollout(RolloutSpec(version=versions["b"], mode="canary",
                                               weight=0.3), "test")
    reload(app_client)
    row = records(features, 1)
    routes = {}
    for i in range(400):
        body = app_client.post("/predict", json={"dataframe_records": row,
                                                 "ids": [f"user-{i}"]}).json()
        routes[f"user-{i}"] = (body["route"], body["model_version"])
    canary = [pid for pid, (route, _) in routes.items() if route == "canary"]
    assert 0.22 < len(canary) / 400 < 0.38
    assert {routes[pid][1] for pid in canary} == {versions["b"]}
    for pid in list(routes)[:50]:  # the same id always lands on the same arm
        body = app_client.post("/predict", json={"dataframe_records": row, "ids": [pid]}).json()
        assert (body["route"], body["model_version"]) == routes[pid]
    assert sample(app_client, "tether_rollout_weight_ratio",
                  {"model": project.model_name, "version": str(versions["b"])}) == 0.3
    info = app_client.get("/version").json()["versions"]
    assert {(v["route"], v["version"]) for v in info} == {("champion", versions["a"]),
                                                          ("canary", versions["b"])}


def test_shadow_scores_off_the_response_path_and_logs_route_shadow(
        app_client: TestClient, project: Project, versions: dict[str, int],
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    project.registry.start_rollout(RolloutSpec(version=versions["b"], mode="shadow",
                                               weight=0.0), "test")
    reload(app_client)
    ids = [f"s{i}" for i in range(5)]
    body = app_client.post("/predict", json={"dataframe_records": records(features, 5),
                                             "ids": ids}).json()
    assert (body["route"], body["model_version"]) == ("champion", versions["a"])
    store = project.store

    def shadow_rows() -> pd.DataFrame:
        app_client.app.state.server.predlog.flush()  # type: ignore[attr-defined]
        return store.prediction_window(project.model_name, route="shadow")

    wait_for(lambda: len(shadow_rows()) == 5)
    rows = shadow_rows()
    assert sorted(rows["id"]) == sorted(f"{pid}{SHADOW_SUFFIX}" for pid in ids)
    assert set(rows["model_version"]) == {versions["b"]}
    app_client.post("/feedback", json={"labels": [{"id": ids[0], "label": 1}]})
    labeled = store.prediction_window(project.model_name, labeled_only=True)
    assert sorted(labeled["route"]) == ["champion", "shadow"]


def test_a_failing_canary_falls_back_to_the_champion_and_is_recorded(
        app_client: TestClient, project: Project, versions: dict[str, int],
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    project.registry.start_rollout(RolloutSpec(version=versions["fragile"], mode="canary",
                                               weight=1.0), "test")
    reload(app_client)
    healthy = app_client.post("/predict", json={"dataframe_records": records(features, 2)})
    assert healthy.json()["route"] == "canary"
    poison = [{**records(features, 1)[0], "mean radius": BIG}]
    answer = app_client.post("/predict", json={"dataframe_records": poison, "ids": ["p1"]})
    assert answer.status_code == 200
    assert (answer.json()["route"], answer.json()["model_version"]) == ("champion",
                                                                        versions["a"])
    app_client.app.state.server.predlog.flush()  # type: ignore[attr-defined]
    errors = project.store.prediction_window(project.model_name, route="canary")
    failed = errors[errors["error"].astype(bool)]
    assert list(failed["id"]) == ["p1:failed"] and list(failed["model_version"]) == [
        versions["fragile"]]
    assert sample(app_client, "tether_prediction_errors_total",
                  {"model": project.model_name, "version": str(versions["fragile"]),
                   "route": "canary"}) == 1.0


def test_a_failing_champion_answers_503_with_a_reason(
        app_client: TestClient, project: Project, versions: dict[str, int],
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    project.registry.promote(versions["fragile"], "test")
    reload(app_client)
    poison = [{**records(features, 1)[0], "mean radius": BIG}]
    answer = app_client.post("/predict", json={"dataframe_records": poison})
    assert answer.status_code == 503
    assert "mean radius out of range" in answer.json()["message"]
    invocations = app_client.post("/invocations", json={"dataframe_records": poison})
    assert invocations.status_code == 503
    assert app_client.post("/predict", json={
        "dataframe_records": records(features, 1)}).status_code == 200


def test_a_version_that_fails_to_warm_never_takes_traffic(
        app_client: TestClient, project: Project, versions: dict[str, int],
        cancer: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch) -> None:
    features, _ = cancer
    monkeypatch.setenv(BREAK_ENV, "1")
    project.registry.promote(versions["fragile"], "test")
    reload(app_client)
    for _ in range(5):
        answer = app_client.post("/predict", json={"dataframe_records": records(features, 1)})
        assert answer.json()["model_version"] == versions["a"]
    events = project.store.events(project.model_name, kinds=["model_load_failed"])
    assert [e.version for e in events] == [versions["fragile"]]
    assert "model broken on purpose" in events[0].reason
    assert sample(app_client, "tether_model_load_failures_total",
                  {"model": project.model_name, "version": str(versions["fragile"])}) == 1.0
    assert app_client.get("/ready").json()["champion"] == versions["a"]


def test_rollback_to_the_replaced_version_is_a_pointer_swap(
        app_client: TestClient, project: Project, versions: dict[str, int]) -> None:
    server = app_client.app.state.server  # type: ignore[attr-defined]
    first = server.table.champion
    project.registry.promote(versions["b"], "test")
    reload(app_client)
    assert server.table.champion.version == versions["b"]
    project.registry.rollback("test")
    started = time.perf_counter()
    server.reload_from_thread()  # as a controller thread outside the event loop would
    elapsed = time.perf_counter() - started
    assert server.table.champion is first  # the same loaded slot, not a reload
    assert elapsed < 1.0


def test_polling_follows_a_promotion(project: Project, versions: dict[str, int],
                                     cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    app = create_app(project, registry=CollectorRegistry(), poll_seconds=0.2)
    with TestClient(app) as client:
        project.registry.promote(versions["b"], "test")

        def answered_by_b() -> bool:
            body = client.post("/predict", json={"dataframe_records": records(features, 1)})
            return bool(body.json()["model_version"] == versions["b"])

        wait_for(answered_by_b, timeout=15)
