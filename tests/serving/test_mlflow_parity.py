"""For the same model and request, tether answers as `mlflow models serve` does.

One `mlflow models serve` process (started once for the module) and one tether server
(MODEL_PATH mode) serve the same model folder; every request goes to both.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from tests.serving.conftest import LiveServer, fit_lr, records, saved_model
from tether.config import load_config
from tether.net import free_port, wait_http
from tether.project import Project
from tether.serving import create_app


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory,
                 cancer: tuple[pd.DataFrame, pd.Series]) -> Path:
    features, _ = cancer
    return saved_model(tmp_path_factory.mktemp("parity"), fit_lr(cancer), features)


@pytest.fixture(scope="module")
def mlflow_url(model_folder: Path) -> Iterator[str]:
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_folder), "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/ping", timeout=120, process=process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@pytest.fixture(scope="module")
def tether_url(model_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.conftest import write_project

    folder = tmp_path_factory.mktemp("parity-project")
    config = write_project(folder)
    project = Project(load_config(config, environ={}))
    app = create_app(project, registry=CollectorRegistry(), model_path=str(model_folder))
    with LiveServer(app) as server:
        yield server.url


def _cases(features: pd.DataFrame) -> list[tuple[str, bytes, str | None]]:
    rows = records(features, 3)
    split = features.head(3).to_dict("split")
    split = {"columns": split["columns"], "data": split["data"]}
    reordered = features.head(2)[list(reversed(features.columns))].to_dict("split")
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    missing = [{k: v for k, v in row.items() if k != "mean radius"} for row in rows]
    extra = [{**row, "zip": 1.0} for row in rows]
    text = [{**rows[0], "mean area": "big"}]
    null = [{**rows[0], "mean area": None}]
    json = "application/json"
    dump = orjson.dumps
    return [
        ("split", dump({"dataframe_split": split}), json),
        ("records", dump({"dataframe_records": rows}), json),
        ("instances", dump({"instances": rows}), json),
        ("inputs columns", dump({"inputs": columns}), json),
        ("reordered split", dump({"dataframe_split": {"columns": reordered["columns"],
                                                      "data": reordered["data"]}}), json),
        ("charset", dump({"dataframe_records": rows}), "application/json; charset=utf-8"),
        ("csv", features.head(4).to_csv(index=False).encode(), "text/csv"),
        ("extra column", dump({"dataframe_records": extra}), json),
        ("missing column", dump({"dataframe_records": missing}), json),
        ("string for a float", dump({"dataframe_records": text}), json),
        ("null for a float", dump({"dataframe_records": null}), json),
        ("malformed json", b'{"dataframe_records": [', json),
        ("empty body", b"", json),
        ("a list", b"[1, 2]", json),
        ("two formats", dump({"dataframe_records": rows, "inputs": columns}), json),
        ("no format", dump({"rows": rows}), json),
        ("wrong content type", dump({"dataframe_records": rows}), "text/plain"),
        ("content type parameter", dump({"dataframe_records": rows}),
         "application/json; format=pandas-split"),
        ("latin-1", dump({"dataframe_records": rows}), "application/json; charset=latin-1"),
        ("bad csv", b"mean radius\n\"unclosed", "text/csv"),
    ]


_SET = re.compile(r"\{('[^'{}]*'(?:, '[^'{}]*')*)\}")


def _unordered_sets(text: str) -> str:
    """MLflow prints Python sets in its messages; their order follows the process's hash
    seed, so two MLflow servers disagree too. Sort them before comparing."""
    return _SET.sub(lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", text)


def _body(answer: httpx.Response) -> Any:
    if answer.headers.get("content-type", "").startswith("application/json"):
        try:
            document = answer.json()
        except ValueError:
            return answer.text
        if isinstance(document, dict) and isinstance(document.get("message"), str):
            document["message"] = _unordered_sets(document["message"])
        return document
    return answer.text


def test_invocations_answer_exactly_as_mlflow_does(
        mlflow_url: str, tether_url: str, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    features, _ = cancer
    differences = []
    for name, body, content_type in _cases(features):
        headers = {"Content-Type": content_type} if content_type else {}
        theirs = httpx.post(f"{mlflow_url}/invocations", content=body, headers=headers,
                            timeout=60)
        ours = httpx.post(f"{tether_url}/invocations", content=body, headers=headers,
                          timeout=60)
        mine = (ours.status_code, ours.headers.get("content-type"), _body(ours))
        expected = (theirs.status_code, theirs.headers.get("content-type"), _body(theirs))
        if mine != expected:
            differences.append((name, expected, mine))
    assert differences == []


def test_ping_and_health_answer_as_mlflow_does(mlflow_url: str, tether_url: str) -> None:
    for path in ("/ping", "/health"):
        theirs, ours = httpx.get(mlflow_url + path), httpx.get(tether_url + path)
        assert (ours.status_code, ours.text, ours.headers["content-type"]) == (
            theirs.status_code, theirs.text, theirs.headers["content-type"])
