"""Datetime, boolean and missing values read as MLflow's signature types define them, the
same on `/invocations` and `/predict`; `/invocations` compared with MLflow's own scoring
app on the same model folder and body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.pyfunc import scoring_server
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from tether.project import Project
from tether.serving import create_app


class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """2 * x; fails unless `ts` really is a datetime column."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        assert pd.api.types.is_datetime64_any_dtype(model_input["ts"])
        return model_input["x"].astype(float).to_numpy() * 2.0


class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """The boolean column as 0/1."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input["is_member"].astype(int).to_numpy()


class Lengths(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Length of the text, 0 for a missing one (a model that handles missing values)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return np.array([0 if v is None or v != v else len(v) for v in model_input["city"]])


class StrictLengths(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Length of the text; a missing one is an error."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return np.array([len(v) for v in model_input["city"]])


def _save(folder: Path, model: Any, example: pd.DataFrame) -> Path:
    mlflow.pyfunc.save_model(str(folder), python_model=model, input_example=example,
                             signature=infer_signature(example, model.predict(None, example)))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("signature-types")
    return {
        "datetime": _save(root / "datetime", Doubler(), pd.DataFrame({
            "x": [1.0, 2.0],
            "ts": pd.to_datetime(["2024-01-01T00:00:00", "2024-02-01T12:30:00"])})),
        "boolean": _save(root / "boolean", Echo(), pd.DataFrame({
            "is_member": [True, False], "amount": [10.0, 20.0]})),
        "lengths": _save(root / "lengths", Lengths(), pd.DataFrame({
            "city": ["Lyon", "Oslo"], "n": [1.0, 2.0]})),
        "strict": _save(root / "strict", StrictLengths(), pd.DataFrame({
            "city": ["Lyon", "Oslo"], "n": [1.0, 2.0]})),
        # a None in the example makes the column optional in the inferred signature
        "optional": _save(root / "optional", Lengths(), pd.DataFrame({
            "city": ["Lyon", None], "n": [1.0, 2.0]})),
    }


@pytest.fixture
def serve(empty_project: Project) -> Iterator[Any]:
    clients: list[TestClient] = []

    def open_client(folder: Path) -> TestClient:
        app = create_app(empty_project, registry=CollectorRegistry(), model_path=str(folder))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.__exit__(None, None, None)


def mlflow_answer(folder: Path, body: bytes) -> tuple[int, Any]:
    """What `mlflow models serve` answers: MLflow's own scoring app on the same folder."""
    client = TestClient(scoring_server.init(mlflow.pyfunc.load_model(str(folder))))
    answer = client.post("/invocations", content=body,
                         headers={"Content-Type": "application/json"})
    return answer.status_code, answer.json()


def post(client: TestClient, route: str, body: bytes) -> tuple[int, Any]:
    answer = client.post(route, content=body, headers={"Content-Type": "application/json"})
    return answer.status_code, answer.json()


def split(columns: list[str], rows: list[list[Any]]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()


def test_datetime_columns_take_iso_8601_strings_as_mlflow_does(
        folders: dict[str, Path], serve: Any) -> None:
    folder = folders["datetime"]
    client = serve(folder)
    body = split(["x", "ts"], [[1.0, "2024-01-01T00:00:00"], [2.0, "2024-02-01T12:30:00"]])
    assert client.get("/ready").json()["ready"] is True
    assert post(client, "/invocations", body) == mlflow_answer(folder, body) \
        == (200, {"predictions": [2.0, 4.0]})
    status, answer = post(client, "/predict", body)
    assert (status, answer["predictions"]) == (200, [2.0, 4.0])
    own = (folder / "serving_input_example.json").read_bytes()
    assert post(client, "/invocations", own) == mlflow_answer(folder, own)
    assert post(client, "/invocations", own)[0] == 200
    # ISO-8601 variants in one column (date only, with seconds) parse alike
    status, answer = post(client, "/predict", split(["x", "ts"], [
        [1.0, "2024-01-01"], [3.0, "2024-02-01T12:30:00.5"]]))
    assert (status, answer["predictions"]) == (200, [2.0, 6.0])


@pytest.mark.parametrize(("value", "fragment"), [
    ("2024-13-01", "column 'ts': expected datetime (an ISO-8601 string such as "
                   "'2024-01-31T12:30:00'), got '2024-13-01' at row 0"),
    ("01/02/2024", "got '01/02/2024' at row 0"),
    (20240101, "column 'ts': expected datetime (an ISO-8601 string), got int 20240101"),
    ("2024-01-01T00:00:00Z", "has a UTC offset; the model's datetime type is timezone-naive"),
])
def test_a_datetime_that_cannot_be_read_is_a_4xx_naming_the_column(
        folders: dict[str, Path], serve: Any, value: Any, fragment: str) -> None:
    status, answer = post(serve(folders["datetime"]), "/predict",
                          split(["x", "ts"], [[1.0, value]]))
    assert status == 400 and fragment in answer["message"], answer


def test_boolean_strings_are_refused_on_both_routes_never_read_as_true(
        folders: dict[str, Path], serve: Any) -> None:
    folder = folders["boolean"]
    client = serve(folder)
    body = split(["is_member", "amount"], [["false", 10.0], [False, 10.0], ["no", 10.0],
                                           ["0", 10.0]])
    assert mlflow_answer(folder, body) == (200, {"predictions": [1, 0, 1, 1]})  # MLflow's
    refused = (400, {"error": "AmbiguousValue", "message": (
        "column 'is_member': expected boolean (JSON true or false), got str 'false' at row 0")})
    assert post(client, "/invocations", body) == post(client, "/predict", body) == refused
    # the same strings where MLflow's own code would answer (an extra column it ignores)
    extra = split(["is_member", "amount", "zip"], [["no", 10.0, 1]])
    assert mlflow_answer(folder, extra) == (200, {"predictions": [1]})
    status, answer = post(client, "/invocations", extra)
    assert (status, answer["error"]) == (400, "AmbiguousValue")
    assert "got str 'no' at row 0" in answer["message"]


def test_booleans_that_are_booleans_score_as_mlflow_scores_them(
        folders: dict[str, Path], serve: Any) -> None:
    folder = folders["boolean"]
    client = serve(folder)
    body = split(["is_member", "amount"], [[True, 1.0], [False, 2.0], [1, 3.0], [0, 4.0]])
    assert post(client, "/invocations", body) == mlflow_answer(folder, body) \
        == (200, {"predictions": [1, 0, 1, 0]})
    csv = client.post("/predict", content=b"is_member,amount\nTrue,1.0\nfalse,2.0\n",
                      headers={"Content-Type": "text/csv"})
    assert csv.json()["predictions"] == [1, 0]


def test_null_in_a_string_column_is_accepted_where_the_model_handles_it(
        folders: dict[str, Path], serve: Any) -> None:
    body = split(["city", "n"], [[None, 1.0], ["Paris", 2.0]])
    status, answer = post(serve(folders["lengths"]), "/predict", body)
    assert (status, answer["predictions"]) == (200, [0, 5])
    status, answer = post(serve(folders["strict"]), "/predict", body)
    assert status == 400
    assert answer["message"].startswith("column 'city': null at row 0; expected string")


def test_an_optional_column_may_be_null_or_left_out(
        folders: dict[str, Path], serve: Any) -> None:
    client = serve(folders["optional"])
    status, answer = post(client, "/predict", split(["city", "n"], [[None, 1.0],
                                                                   ["Rome", 2.0]]))
    assert (status, answer["predictions"]) == (200, [0, 4])
    status, answer = post(client, "/predict", split(["n"], [[1.0]]))
    assert (status, answer["predictions"]) == (200, [0])
    status, answer = post(client, "/predict", json.dumps(
        {"dataframe_records": [{"n": 1.0}, {"n": 2.0, "city": "Kyiv"}]}).encode())
    assert (status, answer["predictions"]) == (200, [0, 4])


class Capped(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """2 * x, for x up to 100."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        if (model_input["x"] > 100).any():
            raise ValueError("x above 100")
        return model_input["x"].to_numpy() * 2.0


def test_a_version_that_fails_on_its_own_serving_example_never_reports_ready(
        serve: Any, tmp_path: Path) -> None:
    folder = _save(tmp_path / "model", Capped(), pd.DataFrame({"x": [1.0, 2.0]}))
    (folder / "serving_input_example.json").write_text(json.dumps(
        {"dataframe_split": {"columns": ["x"], "data": [[1000.0]]}}))
    client = serve(folder)
    assert client.get("/ready").status_code == 503
    status, answer = post(client, "/predict", split(["x"], [[1.0]]))
    assert status == 503
    assert "version 1 failed to load: ModelCallFailed" in answer["message"]
    assert "x above 100" in answer["message"]


def test_an_example_only_mlflow_reads_still_serves_through_mlflow(
        folders: dict[str, Path], serve: Any, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(folders["datetime"], folder)
    (folder / "serving_input_example.json").write_text(json.dumps(
        {"dataframe_split": {"columns": ["x", "ts"], "data": [[1.0, "01/02/2024"]]}}))
    client = serve(folder)
    assert client.get("/ready").json()["ready"] is True
    body = split(["x", "ts"], [[1.0, "01/02/2024"]])
    assert post(client, "/invocations", body) == mlflow_answer(folder, body)
    assert post(client, "/predict", body)[0] == 400
