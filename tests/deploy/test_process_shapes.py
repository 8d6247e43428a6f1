"""Each process the Helm chart runs, built by `tether.apps` as its command builds it:
the metrics it exports (every gauge the shipped rules and Grafana dashboard query comes
from one of them) and the triggers its controller has."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.conftest import use_trained, write_project
from tests.control.traffic import serve as log_traffic
from tests.deploy.test_metric_contract import (
    SERIES,
    dashboard_expressions,
    rule_expressions,
    selectors,
)
from tether import apps
from tether.control.triggers import TriggerKind
from tether.metric_names import METRICS, exported_by
from tether.project import Project
from tether.registry import RolloutSpec

TOKEN = "shape-token"
TRACKING = {"mlflow": {"trackingUri": "http://mlflow.mlflow.svc:5000"}}


def queried_gauges() -> set[str]:
    """Every gauge a shipped alert, recording rule or dashboard panel reads."""
    names = {SERIES[name] for _, expr in rule_expressions() + dashboard_expressions()
             for name, _ in selectors(expr) if name in SERIES}
    return {name for name in names if METRICS[name].kind == "gauge"}


def families(client: TestClient) -> dict[str, list[Any]]:
    """Metric name -> samples, from a scrape of /metrics."""
    text = client.get("/metrics").text
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):  # a counter's creation time, not a metric
            continue
        name = family.name if family.type != "counter" else f"{family.name}_total"
        found[name] = list(family.samples)
    return found


@pytest.fixture
def project(project_dir: Path, trained_template: Path,
            monkeypatch: pytest.MonkeyPatch) -> Project:
    write_project(project_dir, **{"monitoring.interval_seconds": 0.2,
                                  "monitoring.window_size": 400,
                                  "monitoring.min_labels": 50})
    use_trained(project_dir, trained_template)
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("TETHER_ALERTMANAGER_TOKEN", TOKEN)
    opened = Project.open(project_dir / "tether.yaml")
    opened.registry.promote(1, "first")
    opened.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.25,
                                              started_at=time.time()), "canary")
    log_traffic(opened, 1, "champion", 400, seed=1)
    log_traffic(opened, 2, "canary", 150, seed=2)
    return opened


@pytest.fixture(scope="module")
def chart_shapes(render_chart: Any) -> dict[str, dict[str, Any]]:
    """The tether command each Deployment of the default chart runs, by shape (the
    bundled MLflow server runs `mlflow`, not tether)."""
    shapes = {}
    for doc in render_chart(TRACKING):
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            if "command" not in container:  # the image's entry point: tether
                shapes[container["args"][0]] = doc
    return shapes


def scraped(client: TestClient, wanted: set[str], timeout: float = 60.0) -> dict[str, list[Any]]:
    """Scrape until every `wanted` metric has a sample (the monitoring thread computes
    snapshots every monitoring.interval_seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        found = families(client)
        if all(found.get(name) for name in wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_chart_runs_a_server_and_a_controller(chart_shapes: dict[str, Any]) -> None:
    assert set(chart_shapes) == {"serve", "controller"}
    assert set(chart_shapes) <= set(apps.SHAPES)


def test_a_server_replica_exports_every_server_and_monitoring_gauge(
        project: Project, chart_shapes: dict[str, Any]) -> None:
    assert "serve" in chart_shapes
    process = apps.serve(project)
    assert process.controller is None
    gauges = {name for name in queried_gauges()
              if METRICS[name].source in ("server", "monitoring")}
    assert {"tether_drift_share_ratio", "tether_live_metric_ci_upper",
            "tether_live_metric_samples", "tether_model_info"} <= gauges
    with TestClient(process.app) as client:
        found = scraped(client, gauges)
        # no controller here: no webhook takes a trigger
        assert client.post("/hooks/alertmanager", json={}).status_code in (404, 405)
    assert {name for name in gauges if not found.get(name)} == set()
    assert set(found) >= exported_by("server") | exported_by("monitoring")
    assert not set(found) & exported_by("controller")
    served = {(s.labels["version"], s.labels["route"]) for s in found["tether_model_info"]}
    assert served == {("1", "champion"), ("2", "canary")}
    assert "1" in {s.labels["version"] for s in found["tether_drift_share_ratio"]}


def test_the_controller_exports_its_metrics_and_has_every_trigger(
        project: Project, chart_shapes: dict[str, Any]) -> None:
    assert "controller" in chart_shapes
    process = apps.controller(project, interval=0.2)
    assert process.controller is not None
    assert process.controller.watches == {TriggerKind.DRIFT, TriggerKind.METRIC,
                                          TriggerKind.CHANGE}
    gauges = {name for name in queried_gauges() if METRICS[name].source == "controller"}
    assert gauges == {"tether_rollout_step"}
    with TestClient(process.app) as client:
        found = scraped(client, gauges | {"tether_controller_condition"})
        accepted = client.post("/hooks/alertmanager", headers={
            "Authorization": f"Bearer {TOKEN}"}, json={
            "version": "4", "status": "firing", "alerts": [{
                "status": "firing", "labels": {"alertname": "TetherDriftShareHigh",
                                               "action": "retrain"}}]})
        status = client.get("/controller/status").json()["status"]
    assert accepted.status_code == 202 and accepted.json()["accepted"]
    assert set(found) == exported_by("controller")
    (step,) = found["tether_rollout_step"]
    assert (step.labels["version"], step.value) == ("2", 0.0)
    assert status is not None
    assert {c["type"] for c in status["conditions"]} >= {"Healthy", "Rollout"}


def test_up_runs_both_in_one_process(project: Project) -> None:
    process = apps.up(project, interval=0.2)
    assert process.controller is not None and process.controller.monitor is process.monitor
    assert process.exports == (exported_by("server") | exported_by("monitoring")
                               | exported_by("controller"))
    with TestClient(process.app) as client:
        found = scraped(client, queried_gauges())
    assert {name for name in queried_gauges() if not found.get(name)} == set()
