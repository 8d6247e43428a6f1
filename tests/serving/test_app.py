"""tether's own routes and bad input, on the ASGI app with a real registry and store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from tests.serving.conftest import records, saved_model
from tether.metric_names import METRICS, exported_series
from tether.project import Project
from tether.serving import create_app

SERVING_METRICS = [name for name in METRICS if list(METRICS).index(name)
                   <= list(METRICS).index("tether_feedback_labels_total")]


@pytest.fixture
def client(project: Project, versions: dict[str, int],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", "s3cret")
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with TestClient(app) as test_client:
        yield test_client


def test_predict_returns_ids_scores_version_and_route(
        client: TestClient, versions: dict[str, int],
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = cancer
    answer = client.post("/predict", json={"dataframe_records": records(features, 20),
                                           "ids": [f"r{i}" for i in range(20)]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["ids"] == [f"r{i}" for i in range(20)]
    assert body["model_version"] == versions["a"] and body["route"] == "champion"
    assert answer.headers["x-model-version"] == str(versions["a"])
    assert len(body["scores"]) == 20 and all(0.0 <= s <= 1.0 for s in body["scores"])
    # the predictions are the model's: a well-fitted LR on its training rows
    assert (pd.Series(body["predictions"]) == target.head(20).to_numpy()).mean() > 0.8
    assert [p == int(s > 0.5) for p, s in zip(body["predictions"], body["scores"],
                                              strict=True)] == [True] * 20


def test_feedback_is_written_before_the_answer(client: TestClient, project: Project,
                                               cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    ids = client.post("/predict", json={"dataframe_records": records(features, 3)}).json()["ids"]
    answer = client.post("/feedback", json={"labels": [
        {"id": ids[0], "label": 1}, {"id": ids[1], "label": 0.0}, {"id": "nope", "label": 1}]})
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 2, "unknown_ids": ["nope"]}
    labeled = project.store.prediction_window(project.model_name, labeled_only=True)
    assert sorted(labeled["id"]) == sorted(ids[:2])
    again = client.post("/feedback", json={"labels": [{"id": ids[0], "label": 0}]})
    assert again.json() == {"accepted": 1, "unknown_ids": []}  # idempotent, latest wins


@pytest.mark.parametrize(("labels", "fragment"), [
    ([{"id": "a", "label": None}], "labels[0].label: expected a class (a string or a number) "
                                   "or a number, got NoneType None"),
    ([{"id": "a", "label": 1}, {"id": ["x"], "label": 1}], "labels[1].id: expected a string"),
    ([{"id": "a"}], "labels[0]: expected an object with 'id' and 'label'"),
])
def test_feedback_with_wrong_types_names_the_row(client: TestClient, labels: list[object],
                                                 fragment: str) -> None:
    answer = client.post("/feedback", json={"labels": labels})
    assert answer.status_code == 400
    assert fragment in answer.json()["message"]


@pytest.mark.parametrize("suffix", [":shadow", ":failed"])
def test_client_ids_may_not_take_the_suffixes_of_tethers_own_rows(
        client: TestClient, project: Project, cancer: tuple[pd.DataFrame, pd.Series],
        suffix: str) -> None:
    # "q:shadow" as a client id would be the shadow twin of request "q": a label for "q"
    # would relabel it too
    features, _ = cancer
    answer = client.post("/predict", json={"dataframe_records": records(features, 2),
                                           "ids": ["q", f"q{suffix}"]})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith(f"ids[1]: 'q{suffix}' ends in '{suffix}'")
    label = client.post("/feedback", json={"labels": [{"id": f"q{suffix}", "label": 1}]})
    assert label.status_code == 400
    assert label.json()["message"].startswith(f"labels[0].id: 'q{suffix}' names one of "
                                              "tether's own rows")
    assert "label the request's id 'q'" in label.json()["message"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"labels": [{"id": "ID0", "label": 1, "timestamp": 5}]},
     "labels[0]: unknown field(s) ['timestamp']; allowed: id, label"),
    ({"labels": [{"id": "ID0", "label": 1}], "model": "x"},
     "body: unknown field(s) ['model']; allowed: labels"),
    ({"labels": [{"id": "ID0", "label": 1}, {"id": "ID1", "label": 1},
                 {"id": "ID0", "label": 0}]},
     "labels[0] and labels[2] give id 'ID0' two labels (1 and 0); send one label per id"),
])
def test_feedback_that_would_be_partly_ignored_is_refused_whole(
        client: TestClient, project: Project, cancer: tuple[pd.DataFrame, pd.Series],
        body: dict[str, list[dict[str, object]]], fragment: str) -> None:
    features, _ = cancer
    ids = client.post("/predict", json={"dataframe_records": records(features, 2)}).json()["ids"]
    text = orjson.dumps(body).decode().replace("ID0", ids[0]).replace("ID1", ids[1])
    answer = client.post("/feedback", content=text,
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["message"] == fragment.replace("ID0", ids[0])
    assert project.store.prediction_window(project.model_name, labeled_only=True).empty
    same = client.post("/feedback", json={"labels": [{"id": ids[0], "label": 1},
                                                     {"id": ids[0], "label": 1.0}]})
    assert same.json() == {"accepted": 1, "unknown_ids": []}


def _post(client: TestClient, path: str, body: bytes, content_type: str | None
          ) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.post(path, content=body, headers=headers)
    assert answer.headers["content-type"].startswith("application/json")
    return answer.status_code, answer.json()


def test_bad_input_gets_a_4xx_json_reason_and_the_server_stays_up(
        client: TestClient, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    good = records(features, 1)
    cases: list[tuple[bytes, str | None, int, str]] = [
        (b'{"dataframe_records": [', "application/json", 400, "malformed JSON"),
        (orjson.dumps({"dataframe_records": good}), "text/plain", 415, "not supported"),
        (orjson.dumps({"dataframe_records": good}), None, 415, "not supported"),
        # curl's default for -d: the fix is named in the answer
        (orjson.dumps({"dataframe_records": good}), "application/x-www-form-urlencoded", 415,
         "send the header Content-Type: application/json (curl: -H 'Content-Type: "
         "application/json')"),
        (b'{"features": 5}', "application/json", 400,
         "features must be a list of rows (or one row)"),
        (b'{"features": {"mean radius": 1}}', "application/json", 400,
         "features must be a list of rows (or one row)"),
        (b"", "application/json", 400, "empty body"),
        (b"x" * (10 * 1024 * 1024), "application/json", 413, "bytes exceeds the limit"),
        (orjson.dumps({"dataframe_records": [{k: v for k, v in good[0].items()
                                              if k != "mean radius"}]}),
         "application/json", 400, "missing column(s) 'mean radius' (double)"),
        (orjson.dumps({"dataframe_records": [{**good[0], "zip": 1.0}]}), "application/json",
         400, "unexpected column(s) ['zip']"),
        (orjson.dumps({"dataframe_records": [{**good[0], "mean area": "big"}]}),
         "application/json", 400, "column 'mean area': expected double, got str 'big'"),
        (orjson.dumps({"dataframe_records": [{**good[0], "mean area": None}]}),
         "application/json", 400, "column 'mean area': NaN or null at row 0"),
        (orjson.dumps({"dataframe_records": good, "ids": ["a", "b"]}), "application/json", 400,
         "one per row"),
        (b"[1, 2]", "application/json", 400, "expected a JSON object"),
    ]
    for body, content_type, status, fragment in cases:
        code, document = _post(client, "/predict", body, content_type)
        assert (code, fragment in str(document["message"])) == (status, True), document
    assert client.post("/predict", json={"dataframe_records": good}).status_code == 200


def test_a_hundred_thousand_rows_are_refused_with_the_limit(
        project: Project, versions: dict[str, int]) -> None:
    app = create_app(project, poll=False, registry=CollectorRegistry(),
                     options=project.policy.serving.model_copy(
                         update={"max_body_bytes": 64 * 1024 * 1024}))
    rows = {"dataframe_split": {"columns": ["mean radius"], "data": [[1.0]] * 100_000}}
    with TestClient(app) as client:
        code, document = _post(client, "/predict", orjson.dumps(rows), "application/json")
        assert code == 413 and "100000 rows exceed the limit of 10000" in str(
            document["message"])
        code, _ = _post(client, "/invocations", orjson.dumps(rows), "application/json")
        assert code == 413


def test_ready_version_and_docs(client: TestClient, versions: dict[str, int]) -> None:
    assert client.get("/ready").json() == {"ready": True, "champion": versions["a"],
                                           "reason": None, "registry_reachable": True}
    info = client.get("/version").json()
    assert info["versions"] == [{"version": versions["a"], "route": "champion", "weight": 1.0}]
    assert info["mlflow"].startswith("3.")
    assert client.get("/ping").text == "\n"
    schema = client.get("/openapi.json").json()
    assert {"/invocations", "/predict", "/feedback", "/admin/reload"} <= set(schema["paths"])
    assert "/feedback" in client.get("/docs").text
    assert client.get("/nowhere").json()["error"] == "Not Found"


def test_not_ready_without_a_champion(empty_project: Project) -> None:
    with TestClient(create_app(empty_project, poll=False, registry=CollectorRegistry())) as client:
        assert client.get("/ready").status_code == 503
        answer = client.post("/predict", json={"dataframe_records": [{"a": 1.0}]})
        assert answer.status_code == 503 and "no champion" in answer.json()["message"]


def test_metrics_carry_the_contract_names(client: TestClient,
                                          cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    client.post("/predict", json={"dataframe_records": records(features, 4)})
    ids = client.post("/predict", json={"dataframe_records": records(features, 1)}).json()["ids"]
    client.post("/feedback", json={"labels": [{"id": ids[0], "label": 1}]})
    text = client.get("/metrics").text
    for name in SERVING_METRICS:
        if name in ("tether_prediction_errors_total", "tether_model_load_failures_total",
                    "tether_rollout_weight_ratio"):
            continue  # only once something failed or a canary runs; tested there
        assert any(line.startswith(tuple(exported_series(name))) for line in
                   text.splitlines()), name
    assert 'tether_http_requests_total{endpoint="/predict",method="POST",status="200"} 2.0' \
        in text
    assert 'tether_feedback_labels_total{model="loan-default"} 1.0' in text


def test_admin_reload_needs_the_token(client: TestClient, project: Project,
                                      versions: dict[str, int]) -> None:
    assert client.post("/admin/reload").status_code == 401
    wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "TETHER_ADMIN_TOKEN" in wrong.json()["message"]
    project.registry.promote(versions["b"], "test")
    answer = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 200 and answer.json()["champion"] == versions["b"]
    assert client.post("/predict", json={"dataframe_records": [{}]}).status_code == 400


def test_admin_routes_are_off_without_a_token(project: Project,
                                              versions: dict[str, int]) -> None:
    with TestClient(create_app(project, poll=False, registry=CollectorRegistry())) as client:
        answer = client.post("/admin/reload", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 403 and "set TETHER_ADMIN_TOKEN" in answer.json()["message"]


def test_model_path_mode_serves_a_folder_without_the_registry(
        empty_project: Project, tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    from tests.serving.conftest import fit_lr

    features, _ = cancer
    folder = saved_model(tmp_path, fit_lr(cancer), features)
    app = create_app(empty_project, registry=CollectorRegistry(), model_path=str(folder))
    with TestClient(app) as client:
        answer = client.post("/predict", json={"dataframe_records": records(features, 2)})
        assert answer.status_code == 200 and answer.json()["route"] == "champion"
        assert client.get("/version").json()["source"].startswith("model folder")
    assert empty_project.registry.state().champion is None


def test_extra_collectors_routes_and_lifespans_join_the_app(project: Project) -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from prometheus_client.core import GaugeMetricFamily
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    class Live:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            yield GaugeMetricFamily("tether_drift_share_ratio", "share", value=0.25)

    entered: list[str] = []

    @asynccontextmanager
    async def controller(app: Starlette) -> AsyncIterator[None]:
        entered.append("ready" if app.state.server.ready else "not ready")
        yield
        entered.append("left")

    async def hook(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("hooked")

    app = create_app(project, poll=False, registry=CollectorRegistry(), collectors=[Live()],
                     routes=[Route("/hooks/test", hook, methods=["POST"])],
                     lifespans=[controller])
    with TestClient(app) as client:
        assert client.post("/hooks/test").text == "hooked"
        assert "tether_drift_share_ratio 0.25" in client.get("/metrics").text
        assert 'endpoint="/hooks/test"' in client.get("/metrics").text
    assert entered == ["ready", "left"]


def test_predict_takes_every_scoring_format(client: TestClient,
                                            cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    rows = records(features, 3)
    split = features.head(3).to_dict("split")
    bodies = [
        {"dataframe_split": {"columns": split["columns"], "data": split["data"]}},
        {"dataframe_records": rows},
        {"instances": rows},
        {"inputs": {name: [row[name] for row in rows] for name in rows[0]}},
    ]
    answers = [client.post("/predict", json=body).json() for body in bodies]
    csv = client.post("/predict", content=features.head(3).to_csv(index=False).encode(),
                      headers={"Content-Type": "text/csv"}).json()
    expected = answers[0]["scores"]
    for answer in [*answers, csv]:
        assert answer["scores"] == pytest.approx(expected)
        assert len(set(answer["ids"])) == 3


def test_admin_reload_answers_202_when_loading_outlasts_its_bound(
        project: Project, versions: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", "s3cret")
    served = Project.open(project.config.path)
    options = served.policy.serving.model_copy(update={"reload_wait_seconds": 0.001})
    with TestClient(create_app(served, poll=False, registry=CollectorRegistry(),
                               options=options)) as client:
        project.registry.promote(versions["b"], "test")
        answer = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
        # loading and warming version b takes longer than 1 ms: the answer does not wait
        assert answer.status_code == 202, answer.json()
        assert answer.json()["status"] == "reloading" and answer.json()["champion"] == \
            versions["a"]
        deadline = time.monotonic() + 60
        while client.get("/ready").json()["champion"] != versions["b"]:
            assert time.monotonic() < deadline, "the background reload never finished"
            time.sleep(0.05)


def test_verbose_health_names_versions_registry_and_mlflow(client: TestClient,
                                                           versions: dict[str, int]) -> None:
    assert client.get("/health").text == "\n"
    document = client.get("/health?verbose=1").json()
    assert document["status"] == "ok" and document["ready"] is True
    assert document["versions"] == [{"version": versions["a"], "route": "champion",
                                     "weight": 1.0}]
    assert document["registry"]["reachable"] is True
    assert document["registry"]["uri"].startswith("sqlite:///")
    assert document["mlflow"]["client_version"].startswith("3.")
    assert document["mlflow"]["server_version"] is None  # a file, not a tracking server
    assert document["prediction_log"]["durability"] == "ids"


def test_features_reach_the_log_only_when_asked(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        caplog: pytest.LogCaptureFixture) -> None:
    features, _ = cancer
    body = {"dataframe_records": records(features, 2), "ids": ["f1", "f2"]}
    for asked in (False, True):
        options = project.policy.serving.model_copy(update={"log_features": asked})
        caplog.clear()
        with caplog.at_level("INFO", logger="tether.predictions"), TestClient(
                create_app(project, poll=False, registry=CollectorRegistry(),
                           options=options)) as client:
            assert client.post("/predict", json=body).status_code == 200
        logged = [r for r in caplog.records if r.name == "tether.predictions"]
        if not asked:
            assert logged == []
            continue
        (record,) = logged
        assert record.ids == ["f1", "f2"] and record.route == "champion"  # type: ignore[attr-defined]
        assert record.features[1]["mean radius"] == features["mean radius"].iloc[1]  # type: ignore[attr-defined]
        assert len(record.predictions) == 2  # type: ignore[attr-defined]
