"""Every kind of model a user brings, run as a user would: `tether init --example X`,
retrain, gate, promote, `tether up` (a real server and controller in their own process),
predictions and feedback over HTTP, `tether monitor`, a second version canaried by the
controller, then `tether rollback` by hand. Iris (by class number and by species name)
and wine (multiclass), diabetes (regression), breast cancer (binary), on data
scikit-learn ships; a real MLflow registry (SQLite) and a real store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.cli import empty_project, tether, tether_json
from tests.processes import tether_up
from tether.example import datasets

pytestmark = pytest.mark.slow


# example -> (data, primary metric, whether a label-free estimate is expected, how much
# worse in the metric's units a retrained version may be and still roll out: the second
# version is the same trainer on the same data plus the traffic's labels, as good up to
# the noise of a few hundred rows)
CASES: dict[str, tuple[Callable[[], pd.DataFrame], str, bool, float]] = {
    "iris": (datasets.iris, "f1_macro", True, 0.1),
    "iris-species": (datasets.iris_species, "f1_macro", True, 0.1),
    "wine": (datasets.wine, "f1_macro", True, 0.1),
    "diabetes": (datasets.diabetes, "rmse", False, 15.0),
    "breast-cancer": (datasets.breast_cancer, "roc_auc", True, 0.1),
}




@pytest.fixture
def folder(tmp_path: Path, mlflow_template: Path,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    return empty_project(tmp_path, mlflow_template, monkeypatch)


def shorten(folder: Path, tolerance: float) -> None:
    """The example's policy with the time constants of a test: one canary step of half
    the traffic decided on 60 predictions, no retrain of the controller's own; a
    challenger up to `tolerance` worse passes."""
    path = folder / "tether.yaml"
    policy = yaml.safe_load(path.read_text())
    policy["gate"]["min_delta"] = -tolerance
    policy["gate"]["max_latency_ms"] = 2000  # two shared cores: latency is tested alone
    policy["gate"]["max_latency_ratio"] = 10.0
    policy["monitoring"].update(min_labels=40, interval_seconds=1.0)
    policy["triggers"].update(metric_floor=None, metric_drop=None, on_change_detected=False,
                              drift_consecutive=100_000, max_retrains_per_day=0)
    policy["rollout"].update(steps=[0.5], min_predictions=60, min_labels=40,
                             step_timeout_seconds=600, max_metric_drop=tolerance,
                             max_p99_latency_ms=5000)
    policy["rollback"] = {"probation_seconds": 0, "probation_min_predictions": 1,
                          "max_metric_drop": tolerance}
    path.write_text(yaml.safe_dump(policy, sort_keys=False))


@pytest.fixture
def up(folder: Path) -> Iterator[Callable[[], str]]:
    """Starts `tether up` in the project folder when called; stops it afterwards."""
    yield from tether_up(folder)


def send(url: str, data: pd.DataFrame, target: str, rows: int, rng: np.random.Generator,
         per_request: int = 4) -> dict[int, int]:
    """`rows` predictions in requests of a few rows, as flat JSON objects when one row,
    each labeled through /feedback; returns the rows each version answered."""
    served: dict[int, int] = {}
    features = [c for c in data.columns if c != target]
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(rows // per_request):
            chosen = data.iloc[rng.integers(0, len(data), per_request)]
            body: dict[str, Any] = {"dataframe_records":
                                    chosen[features].to_dict(orient="records")}
            answer = client.post("/predict", json=body)
            assert answer.status_code == 200, answer.text
            document = answer.json()
            assert len(document["predictions"]) == per_request
            served[document["model_version"]] = (served.get(document["model_version"], 0)
                                                  + per_request)
            labels = [{"id": pid, "label": value}  # the target's own values: 2, "setosa"
                      for pid, value in zip(document["ids"], chosen[target].tolist(),
                                            strict=True)]
            assert client.post("/feedback", json={"labels": labels}).status_code == 200
    return served


def wait_for(check: Callable[[], Any], what: str, timeout: float = 240.0,
             between: Callable[[], object] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if between is not None:
            between()
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("example", list(CASES))
def test_a_model_of_each_task_runs_the_whole_loop(example: str, folder: Path,
                                                  up: Callable[[], str]) -> None:
    load, primary, estimable, tolerance = CASES[example]
    data = load()
    tether("init", ".", "--example", example)
    shorten(folder, tolerance)
    policy = yaml.safe_load((folder / "tether.yaml").read_text())
    target, task = policy["model"]["target"], policy["model"]["task"]
    assert policy["metric"]["primary"] == primary

    first = tether_json("retrain")
    assert first["model_version"] == 1 and f"holdout_{primary}" in first["metrics"]
    assert tether_json("gate")["passed"]
    assert tether_json("promote")["champion"] == 1
    url = up()

    # the blueprint's request: one flat JSON object is one row
    row = data.drop(columns=target).iloc[0].to_dict()
    answer = httpx.post(f"{url}/predict", json=row, timeout=30).json()
    assert answer["model_version"] == 1 and len(answer["predictions"]) == 1
    if task == "multiclass_classification":
        probabilities = np.array(answer["probabilities"])
        assert probabilities.shape == (1, data[target].nunique())
        assert probabilities.sum() == pytest.approx(1.0)
        classes = sorted(data[target].unique().tolist())  # the model's classes_
        assert answer["predictions"][0] == classes[int(probabilities.argmax())]
    if example == "iris":  # the iris blueprint's own requests, trailing slashes and all
        answer = httpx.post(f"{url}/predict/", json={"features": [[1, 2, 3, 4]]}, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
        health = httpx.get(f"{url}/health/", params={"verbose": 1}, timeout=30)
        assert health.status_code == 200 and "mlflow" in health.json()
        assert httpx.get(f"{url}/metrics/", timeout=30).status_code == 200

    rng = np.random.default_rng(3)
    send(url, data, target, 240, rng)
    snapshot = wait_for(lambda: (lambda s: s if s["n_labels"] >= 200 else None)(
        tether_json("monitor")), "the labels to reach the store", timeout=60)
    live = snapshot["live"][primary]
    assert live["value"] is not None and live["lower"] <= live["value"] <= live["upper"]
    holdout = first["metrics"][f"holdout_{primary}"]
    if task == "regression":  # in the target's units: the same order as on the holdout
        assert 0.5 * holdout < live["value"] < 2.0 * holdout
    else:  # the examples' classes are well separated
        assert live["value"] > 0.8
    assert snapshot["drift"]["enough_data"] and snapshot["drift"]["prediction"] is not None
    if task == "multiclass_classification":
        # class probabilities came back from the store: metrics that need them are defined
        for name in ("roc_auc_ovr", "log_loss"):
            assert snapshot["live"][name]["value"] is not None, snapshot["undefined"]
        assert snapshot["drift"]["prediction"]["kind"] == "categorical"
        # the dashboard's chart of a metric that needs the probabilities
        series = httpx.get(f"{url}/api/timeseries", params={"metric": "roc_auc_ovr"},
                           timeout=30).json()["series"]
        points = [p["live_metric"] for s in series for p in s["points"]
                  if p["live_metric"] is not None]
        assert points and min(points) > 0.8
    if estimable:
        estimated = snapshot["estimated"][primary]
        assert estimated is not None, snapshot["reasons"]
        assert abs(estimated - live["value"]) < 0.15
    else:
        assert snapshot["estimated"] == {} and "estimated" in snapshot["reasons"]

    # a second version: gated by hand, canaried by the controller against the first
    assert tether_json("retrain")["model_version"] == 2
    assert tether_json("gate")["passed"]
    canary = wait_for(lambda: (tether_json("status")["rollout"] or None),
                      "the controller to start the canary", timeout=60)
    assert canary["version"] == 2 and canary["mode"] == "canary"
    # the registry says canary as soon as the controller writes it; the server takes it
    # on its next push or poll: traffic sent before that all goes to the champion
    wait_for(lambda: any(v["route"] == "canary" for v in
                         httpx.get(f"{url}/version", timeout=30).json()["versions"]),
             "the server to serve the canary", timeout=60)
    served: dict[int, int] = {}

    def traffic() -> None:
        for version, rows in send(url, data, target, 40, rng).items():
            served[version] = served.get(version, 0) + rows

    traffic()  # fewer rows than a step needs: the canary is still running
    during = tether_json("monitor")  # every version taking traffic
    assert during["version"] == 1 and during["challenger"]["version"] == 2
    assert during["challenger"]["route"] == "canary"
    assert during["challenger"]["n_predictions"] > 0
    status = wait_for(lambda: (lambda s: s if s["rollout"] is None else None)(
        tether_json("status")), "the canary's verdict", between=traffic)
    assert served.get(2, 0) > 0 and served.get(1, 0) > 0  # both arms took traffic
    kinds = [event["kind"] for event in tether_json("history")]
    assert "rollout_started" in kinds
    assert status["champion"] == 2, kinds  # equal models: the canary passes

    # and back by hand: the server follows the registry
    back = tether_json("rollback", "--reason", "checking the way back")
    assert back == {"champion": 1, "rolled_back": 2}
    wait_for(lambda: httpx.post(f"{url}/predict", json=row, timeout=30)
             .json()["model_version"] == 1, "the server to serve version 1 again",
             timeout=30)
    versions = {v["version"]: v["state"] for v in tether_json("status")["versions"]}
    assert versions[2] == "rolled_back" and versions[1] == "champion"
