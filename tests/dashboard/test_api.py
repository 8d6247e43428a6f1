"""The dashboard's JSON API on a real server over a real project history."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tests.dashboard.conftest import ADMIN_TOKEN, serve
from tests.dashboard.history import PROMOTE_REASON, ROLLBACK_REASON, History
from tether import lifecycle
from tether.dashboard.payloads import MIN_BUCKET_LABELS
from tether.monitoring.monitor import Monitor
from tether.project import Project
from tether.registry import RolloutSpec, State

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _get(url: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(url + path, params={k: str(v) for k, v in params.items()}, timeout=30)


def _series(payload: dict[str, object]) -> dict[int, list[dict[str, object]]]:
    return {s["version"]: s["points"] for s in payload["series"]}  # type: ignore[index, union-attr]


def _same_bin_bound(labeled: pd.DataFrame) -> float:
    bins = np.minimum((labeled["score"] * 100).astype(int), 99)
    positive = labeled["label"] >= 0.5
    pos = bins[positive].value_counts()
    neg = bins[~positive].value_counts()
    same = float((pos * neg).fillna(0).sum())
    return same / (2 * positive.sum() * (~positive).sum())


def test_state_names_champion_previous_and_traffic_share(history: History) -> None:
    with serve(history.project, admin_token=None) as served:
        state = _get(served.url, "/api/state").json()
    assert state["champion"]["version"] == 3
    assert state["champion"]["traffic_share"] == 1.0
    assert state["champion"]["reason"] == "recovered: gate passed after retrain"
    assert state["previous"] == 1
    assert state["challenger"] is None
    assert {v["version"]: v["state"] for v in state["versions"]} == {
        1: "retired", 2: "rolled_back", 3: "champion"}
    assert state["versions"][1]["gate"]["passed"] is True
    assert state["message"] is None


def test_state_shows_a_canary_with_its_step_and_latest_analysis(history: History) -> None:
    project = history.project
    project.registry.start_rollout(RolloutSpec(version=1, mode="canary", weight=0.25, step=1),
                                   "canary for the test")
    project.record("analysis", "step 2 healthy", version=1,
                   data={"error_rate": 0.002, "p99_latency_ms": 41.5, "verdict": "pass"})
    try:
        with serve(project, admin_token=None) as served:
            state = _get(served.url, "/api/state").json()
    finally:
        project.registry.stop_rollout(State.RETIRED, "end of the canary test")
    assert state["champion"]["traffic_share"] == 0.75
    challenger = state["challenger"]
    assert (challenger["version"], challenger["mode"], challenger["traffic_share"],
            challenger["step"], challenger["steps"]) == (1, "canary", 0.25, 1, [0.05, 0.25, 0.5])
    assert challenger["analysis"]["reason"] == "step 2 healthy"
    assert challenger["analysis"]["data"]["p99_latency_ms"] == 41.5


def test_timeseries_matches_the_logged_predictions(history: History) -> None:
    project = history.project
    with serve(project, admin_token=None) as served:
        payload = _get(served.url, "/api/timeseries", window=3600, bucket=60).json()
    window = project.store.prediction_window(project.model_name)
    window["bucket"] = (window["ts"] // 60) * 60
    expected = window.groupby(["model_version", "bucket"])
    series = _series(payload)
    assert sorted(series) == [1, 2, 3]
    assert sum(p["requests"] for points in series.values() for p in points) == history.predictions
    checked = 0
    for version, points in series.items():
        for point in points:
            rows = expected.get_group((version, point["t"]))
            labeled = rows[rows["label"].notna()]
            assert point["requests"] == len(rows)
            assert point["errors"] == int(rows["error"].sum())
            assert point["labeled"] == len(labeled)
            assert point["label_coverage"] == pytest.approx(len(labeled) / len(rows))
            assert point["p99_latency_ms"] == pytest.approx(
                np.percentile(rows["latency_ms"], 99), rel=0.1)
            if len(labeled) < MIN_BUCKET_LABELS:  # a bucket cut by the window's edge
                assert point["live_metric"] is None
                continue
            # From 100-bin score histograms: off by at most half the same-bin pairs
            # (plus the payload's rounding to 6 places).
            exact = roc_auc_score(labeled["label"], labeled["score"])
            assert abs(point["live_metric"] - exact) <= _same_bin_bound(labeled) + 1e-6
            assert 0.5 < point["estimated_metric"] < 1
            checked += 1
    assert checked >= 38
    slow = [p["p99_latency_ms"] for p in series[2]]
    assert min(slow) > 300 > max(p["p99_latency_ms"] for p in series[1])
    kinds = {e["kind"] for e in payload["events"]}
    assert {"promoted", "rolled_back", "trained", "gate_passed"} <= kinds
    assert payload["message"] is None


def test_accuracy_is_summed_in_the_database_over_every_label(history: History) -> None:
    project = history.project
    with serve(project, admin_token=None) as served:
        payload = _get(served.url, "/api/timeseries", window=3600, bucket=300,
                       metric="accuracy").json()
    assert payload["metric_source"].startswith("every labeled prediction")
    # the history was written minutes ago: rows older than the window's start left it
    since, until = payload["since"], payload["until"]
    window = project.store.prediction_window(project.model_name, labeled_only=True,
                                             since=since, until=until)
    window["bucket"] = (window["ts"] // 300) * 300
    for version, points in _series(payload).items():
        for point in points:
            if point["t"] < since or point["t"] + 300 > until:
                continue  # a bucket cut by the window's edges (it moves with the clock)
            rows = window[(window["model_version"] == version) & (window["bucket"] == point["t"])]
            if len(rows) < MIN_BUCKET_LABELS:
                assert point["live_metric"] is None
                continue
            assert point["live_metric"] == pytest.approx(  # the payload keeps 6 decimals
                float((rows["prediction"] == rows["label"]).mean()), abs=1e-6)
    every = project.store.prediction_window(project.model_name, since=since, until=until)
    every["bucket"] = (every["ts"] // 300) * 300
    for version, points in _series(payload).items():
        for point in points:
            rows = every[(every["model_version"] == version) & (every["bucket"] == point["t"])]
            confidence = np.maximum(rows["score"], 1 - rows["score"])
            assert point["estimated_metric"] == pytest.approx(float(confidence.mean()))


@pytest.mark.parametrize(("params", "message"), [
    ({"bucket": "0.1"}, "bucket: expected seconds >= 1, got '0.1'"),
    ({"window": "soon"}, "window: expected a number of seconds, got 'soon'"),
    ({"window": "604800", "bucket": "1"}, "604800 buckets; at most 500"),
    ({"metric": "rmse"}, "'rmse' is not a metric of a binary_classification model"),
])
def test_timeseries_rejects_bad_parameters(history: History, params: dict[str, str],
                                           message: str) -> None:
    with serve(history.project, admin_token=None) as served:
        response = _get(served.url, "/api/timeseries", **params)
    assert response.status_code == 400
    assert message in response.json()["message"]


@pytest.mark.parametrize(("path", "query", "message"), [
    # a misspelt parameter used to be ignored: the answer was the default window's
    ("/api/timeseries", "windw=60", "unknown query parameter(s) ['windw']; allowed: model, "
                                    "metric, window, bucket"),
    ("/api/drift", "window=60", "unknown query parameter(s) ['window']; allowed: model, "
                                "version, top"),
    ("/api/events", "kind=promoted", "unknown query parameter(s) ['kind']"),
    ("/api/state", "version=2", "unknown query parameter(s) ['version']; allowed: model"),
    ("/api/timeseries", "window=3600&window=60",
     "query parameter(s) ['window'] given more than once; give each once"),
    ("/api/events", "kinds=promoted,rolledback",
     "kinds: unknown event kind(s) ['rolledback']; known: trained,"),
])
def test_api_refuses_parameters_it_would_ignore(history: History, path: str, query: str,
                                                message: str) -> None:
    with serve(history.project, admin_token=None) as served:
        response = httpx.get(f"{served.url}{path}?{query}", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == "InputError"
    assert response.json()["message"].startswith(message)


def test_drift_flags_the_shifted_applicants(history: History) -> None:
    with serve(history.project, admin_token=None) as served:
        drift = _get(served.url, "/api/drift", top=9).json()
        unknown = _get(served.url, "/api/drift", version=99)
        bad = _get(served.url, "/api/drift", version="latest")
    assert drift["version"] == 3
    assert drift["current_rows"] == 180
    assert drift["drift_share"] > drift["threshold"]
    assert drift["drifted"] is True
    by_name = {f["name"]: f for f in drift["features"]}
    assert by_name["late_payments"]["drifted"] is True
    assert by_name["credit_score"]["method"] == "ks"
    assert by_name["purpose"]["method"] == "chi2"
    # few-valued numeric columns are compared as categories, as `tether monitor` does
    assert by_name["late_payments"]["method"] == "chi2"
    monitored = Monitor(history.project).snapshot(3).drift
    assert monitored is not None
    assert drift["drift_share"] == monitored.share_drifted
    assert {name: (f["method"], f["drifted"], f["p_adjusted"]) for name, f in by_name.items()} == {
        f.name: (f.method, f.drifted, f.p_adjusted) for f in monitored.features}
    for feature in drift["features"]:
        assert sum(feature["reference"]) == pytest.approx(1.0)
        assert sum(feature["current"]) == pytest.approx(1.0)
        assert len(feature["bins"]) == len(feature["reference"]) == len(feature["current"])
    drifted_first = [f["drifted"] for f in drift["features"]]
    assert drifted_first == sorted(drifted_first, reverse=True)
    assert unknown.status_code == 404
    assert "has no version 99" in unknown.json()["message"]
    assert bad.status_code == 400


def test_events_list_decisions_newest_first_with_reasons(history: History) -> None:
    with serve(history.project, admin_token=None) as served:
        events = _get(served.url, "/api/events").json()["events"]
        only = _get(served.url, "/api/events", kinds="rolled_back,promoted", limit=2).json()
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)
    rollback = next(e for e in events if e["kind"] == "rolled_back")
    assert (rollback["version"], rollback["reason"], rollback["data"]) == (
        2, ROLLBACK_REASON, {"to": 1})
    promotion = next(e for e in events if e["kind"] == "promoted" and e["version"] == 2)
    assert promotion["reason"] == PROMOTE_REASON
    gate = next(e for e in events if e["kind"] == "gate_passed")
    assert gate["version"] == 2 and gate["data"]
    assert len(only["events"]) == 2
    assert {e["kind"] for e in only["events"]} <= {"rolled_back", "promoted"}


@pytest.mark.parametrize("path", ["/api/state", "/api/timeseries", "/api/drift",
                                  "/api/events"])
def test_unknown_model_is_a_clear_404(history: History, path: str) -> None:
    with serve(history.project, admin_token=None) as served:
        response = _get(served.url, path, model="fraud")
    assert response.status_code == 404
    assert response.json()["message"] == ("unknown model 'fraud': this server tracks "
                                        "'loan-default'")


def test_empty_history_explains_itself(empty_project: Project) -> None:
    with serve(empty_project, admin_token=None) as served:
        state = _get(served.url, "/api/state").json()
        series = _get(served.url, "/api/timeseries").json()
        drift = _get(served.url, "/api/drift").json()
        events = _get(served.url, "/api/events").json()
        page = httpx.get(served.url + "/")
    assert state["champion"] is None
    assert "has no version yet: run `tether retrain`" in state["message"]
    assert series["series"] == []
    assert series["message"] == "no predictions for 'loan-default' in the last 1h"
    assert "has no champion yet" in drift["message"]
    assert events == {"model": "loan-default", "events": [],
                      "message": "no events yet for 'loan-default'"}
    assert page.status_code == 200 and "loan-default" in page.text


def test_admin_needs_a_configured_token(history: History) -> None:
    with serve(history.project, admin_token=None) as served:
        auth = httpx.get(served.url + "/api/auth", headers=BEARER)
        rollback = httpx.post(served.url + "/admin/rollback", json={"reason": "x"},
                              headers=BEARER)
    for response in (auth, rollback):
        assert response.status_code == 403
        assert "set TETHER_ADMIN_TOKEN" in response.json()["message"]
    assert history.project.registry.state().champion == 3


def test_wrong_or_missing_token_is_refused(history: History) -> None:
    with serve(history.project, admin_token=ADMIN_TOKEN) as served:
        wrong = httpx.post(served.url + "/admin/rollback", json={"reason": "x"},
                           headers={"Authorization": "Bearer guess"})
        missing = httpx.post(served.url + "/admin/retrain", json={"reason": "x"})
        checked = httpx.get(served.url + "/api/auth", headers=BEARER)
    assert wrong.status_code == 401
    assert wrong.json()["message"] == "wrong admin token: it does not match TETHER_ADMIN_TOKEN"
    assert missing.status_code == 401
    assert "missing admin token" in missing.json()["message"]
    assert checked.json() == {"admin": True, "retrain_available": True}
    assert served.hooks.retrains == []
    assert history.project.registry.state().champion == 3


def test_rollback_swaps_the_champion_reloads_and_then_has_nothing_left(
        history: History) -> None:
    project = history.project
    with serve(project, admin_token=ADMIN_TOKEN) as served:
        done = httpx.post(served.url + "/admin/rollback", headers=BEARER,
                          json={"reason": "error rate 3% after deploy"})
        reloads = served.hooks.reloads
        again = httpx.post(served.url + "/admin/rollback", headers=BEARER, json={})
        bad = httpx.post(served.url + "/admin/rollback", headers=BEARER, content=b"[1")
    assert done.status_code == 200
    assert done.json() == {"rolled_back": 3, "champion": 1, "reason": "error rate 3% after deploy"}
    assert project.registry.state().champion == 1
    assert reloads == 1
    last = project.store.events(project.model_name, kinds=["rolled_back"])[-1]
    assert (last.version, last.reason) == (3, "error rate 3% after deploy")
    assert again.status_code == 409
    assert "no previous version to roll back to" in again.json()["message"]
    assert bad.status_code == 400
    assert "malformed JSON" in bad.json()["message"]


def test_a_rollback_while_another_write_holds_the_registry_is_a_409(
        history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    project = history.project
    monkeypatch.setattr(lifecycle, "REGISTRY_WAIT_SECONDS", 0.3)
    lock = f"registry/{project.model_name}"
    assert project.store.acquire_lock(lock, "a promote in CI", 60)
    try:
        with serve(project, admin_token=ADMIN_TOKEN) as served:
            busy = httpx.post(served.url + "/admin/rollback", headers=BEARER,
                              json={"reason": "error rate 3% after deploy"})
    finally:  # the history is shared by the module's tests
        project.store.release_lock(lock, "a promote in CI")
    assert busy.status_code == 409
    assert busy.json()["message"] == (
        "the registry of loan-default is busy while rolling back: a promote in CI has held it "
        "for over 0.3 s; retry")
    assert project.registry.state().champion == 3


def test_retrain_goes_to_the_controller_or_says_none_runs(history: History) -> None:
    with serve(history.project, admin_token=ADMIN_TOKEN) as served:
        accepted = httpx.post(served.url + "/admin/retrain", headers=BEARER,
                              json={"reason": "drift on late_payments"})
        retrains = list(served.hooks.retrains)
    with serve(history.project, admin_token=ADMIN_TOKEN, with_controller=False) as served:
        refused = httpx.post(served.url + "/admin/retrain", headers=BEARER, json={})
    assert accepted.status_code == 202
    assert retrains == ["drift on late_payments"]
    assert refused.status_code == 503
    assert "no controller runs in this process" in refused.json()["message"]


def test_openapi_documents_every_json_endpoint(history: History) -> None:
    with serve(history.project, admin_token=None) as served:
        schema = httpx.get(served.url + "/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/state", "/api/timeseries", "/api/drift", "/api/events", "/api/auth"):
        assert "summary" in paths[path]["get"]
    assert "requestBody" in paths["/admin/rollback"]["post"]
    names = [p["name"] for p in paths["/api/timeseries"]["get"]["parameters"]]
    assert names == ["metric", "window", "bucket", "model"]
