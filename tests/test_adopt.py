"""A model a user logged and registered with plain MLflow (`mlflow.sklearn.log_model`):
`tether adopt` takes it into the project, records its profile, holdout and calibration
from the project's reference data, and from then on gate, monitor and `tether up` work
on it; before it is adopted, every command does what it can and says why in one line.
Real MLflow registry (SQLite), real `tether up` processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.cli import empty_project, runner, tether, tether_json
from tests.processes import tether_up
from tether.cli import app
from tether.example.datasets import breast_cancer

# what a data scientist already has: a pipeline logged, registered and aliased by MLflow
LOG_WITH_MLFLOW = """
import sys
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tether.example.datasets import breast_cancer

name, alias = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri("sqlite:///.tether/mlflow.db")
frame = breast_cancer()
X, y = frame.drop(columns="target"), frame["target"]
if sys.argv[3:] == ["renamed"]:  # trained on columns the project's data does not have
    X = X.rename(columns=lambda column: column.upper())
with mlflow.start_run():
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3),
                                    registered_model_name=name)
MlflowClient().set_registered_model_alias(name, alias, info.registered_model_version)
"""




@pytest.fixture
def folder(tmp_path: Path, mlflow_template: Path,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    empty_project(tmp_path, mlflow_template, monkeypatch)
    tether("init", ".", "--example", "breast-cancer")
    policy = (tmp_path / "tether.yaml").read_text()
    # two shared cores: latency budgets are tested on their own
    policy = policy.replace("max_latency_ms: 50", "max_latency_ms: 2000")
    policy = policy.replace("interval_seconds: 10", "interval_seconds: 1")
    (tmp_path / "tether.yaml").write_text(policy)
    return tmp_path


def log_with_mlflow(folder: Path, name: str, alias: str = "prod", *extra: str) -> None:
    subprocess.run([sys.executable, "-c", LOG_WITH_MLFLOW, name, alias, *extra], cwd=folder,
                   check=True, capture_output=True, timeout=300)


@pytest.fixture
def up(folder: Path) -> Iterator[Callable[[], str]]:
    """Starts `tether up` in the project folder when called; stops it afterwards."""
    yield from tether_up(folder)


def traffic(url: str, seconds: float) -> int:
    """Labeled predictions for `seconds`, a few rows a request; returns rows sent."""
    data = breast_cancer()
    features = data.drop(columns="target")
    rng = np.random.default_rng(5)
    sent = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            index = rng.integers(0, len(data), 5)
            answer = client.post("/predict", json={
                "dataframe_records": features.iloc[index].to_dict(orient="records")})
            assert answer.status_code == 200, answer.text
            labels = [{"id": pid, "label": float(label)} for pid, label in
                      zip(answer.json()["ids"], data["target"].iloc[index], strict=True)]
            assert client.post("/feedback", json={"labels": labels}).status_code == 200
            sent += len(index)
            time.sleep(0.05)
    return sent


def kinds(*wanted: str) -> list[dict[str, Any]]:
    return [e for e in tether_json("history") if e["kind"] in wanted]


@pytest.mark.slow
def test_a_model_logged_by_plain_mlflow_is_adopted_and_run_for_a_minute(
        folder: Path, up: Callable[[], str]) -> None:
    log_with_mlflow(folder, "cancer-clf")
    adopted = tether_json("adopt", "models:/cancer-clf@prod")
    assert adopted["version"] == 1 and adopted["created"]
    assert adopted["recorded"] == ["profile", "holdout", "calibration"]
    assert adopted["missing"] == {}
    assert adopted["metrics"]["holdout_roc_auc"] > 0.95
    versions = tether_json("status")["versions"]
    assert [(v["version"], v["state"]) for v in versions] == [(1, "candidate")]
    assert "adopted from models:/cancer-clf@prod" in versions[0]["reason"]

    verdict = tether_json("gate")
    assert verdict["passed"] and verdict["version"] == 1
    tether("promote", "--version", "1")
    url = up()
    sent = traffic(url, 60.0)
    assert sent >= 200

    snapshot = tether_json("monitor")
    assert snapshot["version"] == 1 and snapshot["n_labels"] >= 100
    assert snapshot["live"]["roc_auc"]["value"] > 0.9
    assert snapshot["drift"] is not None and snapshot["drift"]["enough_data"]
    assert snapshot["estimated"]["roc_auc"] is not None  # the calibration adopt recorded
    assert kinds("controller_error") == []
    assert [e["version"] for e in kinds("adopted")] == [1]
    assert tether_json("status")["champion"] == 1


@pytest.mark.slow
def test_a_version_tether_did_not_train_degrades_until_it_is_adopted(
        folder: Path, up: Callable[[], str]) -> None:
    # registered straight under the project's own model name, gated and promoted by hand:
    # the gate scores it on the reference data's holdout, split as every retrain splits it
    log_with_mlflow(folder, "breast-cancer")
    verdict = tether_json("gate", "--version", "1")
    assert verdict["rows"] > 100 and verdict["scores"]["challenger"]["roc_auc"] > 0.95
    tether("promote", "--version", "1")

    url = up()
    traffic(url, 15.0)
    snapshot = tether_json("monitor")
    assert snapshot["live"]["roc_auc"]["value"] > 0.9  # live metrics without drift
    assert snapshot["drift"] is None
    reason = snapshot["reasons"]["drift"]
    assert "not trained by tether" in reason and "tether adopt models:/breast-cancer/1" in reason
    assert "\n" not in reason
    assert kinds("controller_error") == []

    adopted = tether_json("adopt", "models:/breast-cancer/1")
    assert adopted == {**adopted, "version": 1, "created": False}
    snapshot = tether_json("monitor")
    assert snapshot["drift"] is not None and snapshot["drift"]["enough_data"]


def test_adopt_says_what_it_cannot_take(folder: Path) -> None:
    wrong = runner.invoke(app, ["adopt", "s3://bucket/model"])
    assert wrong.exit_code == 2
    assert "use models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH" in wrong.output
    missing = runner.invoke(app, ["adopt", "models:/nobody@prod"])
    assert missing.exit_code == 4 and "nobody" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    # where it looked, and how to adopt a model another registry holds
    registry = f"sqlite:///{folder / '.tether' / 'mlflow.db'}"
    assert f"in the project's registry {registry}; adopt takes a model" in missing.output
    assert f"MLFLOW_TRACKING_URI={registry}" in missing.output
    no_run = runner.invoke(app, ["adopt", "runs:/0123456789abcdef/model"])
    assert no_run.exit_code == 4, no_run.output
    assert len(no_run.stderr.strip().splitlines()) == 1, no_run.stderr
    assert "0123456789abcdef" in no_run.stderr and "in the project's registry" in no_run.stderr
    assert tether_json("status")["versions"] == []


def test_a_failed_adopt_registers_nothing_and_the_gate_says_why_it_could_not_run(
        folder: Path) -> None:
    log_with_mlflow(folder, "cancer-clf", "prod", "renamed")
    failed = runner.invoke(app, ["adopt", "models:/cancer-clf@prod"])
    assert failed.exit_code == 2, failed.output
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "that the reference data does not have" in lines[0]
    assert "(30 in all)" in lines[0] and "nothing was registered" in lines[0]
    # where the reference comes from, and the names it has in place of the model's
    assert "(data.generator tether.example.datasets:breast_cancer)" in lines[0]
    assert ("the reference data has mean_radius, mean_texture, mean_perimeter, mean_area, "
            "mean_smoothness ... (30 in all) instead") in lines[0]
    assert tether_json("status")["versions"] == []
    assert tether("gate", code=4) == ""  # no candidate left behind to gate
    # the same model registered straight into the project's name: the gate cannot
    # score the reference rows with it, which is not a lost gate (exit 1)
    log_with_mlflow(folder, "breast-cancer", "prod", "renamed")
    # (version 2: the withdrawn version's number is not reused)
    gated = runner.invoke(app, ["gate", "--version", "2"])
    assert gated.exit_code == 2, gated.output
    lines = gated.stderr.strip().splitlines()
    assert len(lines) == 1, gated.stderr
    assert lines[0].startswith("error: the gate could not run: the challenger (version 2) "
                               "cannot score the ")
    assert "it takes column(s) MEAN_RADIUS, MEAN_TEXTURE" in lines[0]
