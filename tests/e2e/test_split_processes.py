"""The Kubernetes shape on one machine: `tether serve` and `tether controller` as separate
processes sharing only the registry and the store (SQLite files, or PostgreSQL for the
store when TETHER_TEST_POSTGRES_URL is set), traffic over real HTTP.

The controller, alone, must see the world move through the store and fire its own drift,
metric-floor and change-detector triggers; the server, alone, must export every gauge
the shipped Prometheus rules and Grafana dashboard query.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import POSTGRES_URL, use_trained, write_project
from tests.deploy.test_process_shapes import queried_gauges
from tests.processes import stop
from tether.demo.traffic import Replayer
from tether.metric_names import METRICS
from tether.net import free_port, wait_http
from tether.project import Project
from tether.registry import RolloutSpec
from tether.store import metadata

pytestmark = pytest.mark.slow

CLI = "from tether.cli import main; main()"
TOKEN = "split-token"
WATCHED = {"drift", "metric", "change_detected"}




def samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def split(request: pytest.FixtureRequest, project_dir: Path, trained_template: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("TETHER_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL 15)")
        metadata.drop_all(sa.create_engine(POSTGRES_URL))
        monkeypatch.setenv("TETHER_STORE_URL", POSTGRES_URL)
    write_project(project_dir, **{
        # a window of a few seconds of traffic: a change detector's alarm (on labeled rows,
        # which lag their predictions) still falls inside it
        "monitoring.window_size": 1500, "monitoring.min_labels": 100,
        "monitoring.interval_seconds": 0.5, "monitoring.drift_share_threshold": 0.3,
        "triggers.drift_consecutive": 2, "triggers.metric_floor": 0.70,
        "triggers.metric_drop": None, "triggers.on_change_detected": True,
        # every trigger is recorded, then skipped by the budget: no retrain pauses the
        # watchers, so each one gets the chance to fire
        "triggers.max_retrains_per_day": 0,
        "rollout.steps": [0.3, 0.6], "rollout.min_predictions": 1_000_000,
    })
    use_trained(project_dir, trained_template)
    monkeypatch.setenv("TETHER_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("TETHER_POLL_SECONDS", "1")
    project = Project.open(project_dir / "tether.yaml")
    project.registry.promote(1, "first champion")
    server_port, controller_port = free_port(), free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    controller_url = f"http://127.0.0.1:{controller_port}"
    env = {**os.environ, "TETHER_DEBUG": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", CLI, "serve", "--port",
                                   str(server_port)], cwd=project_dir, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_http(f"{server_url}/ready", timeout=120, process=processes[0])
        processes.append(subprocess.Popen(
            [sys.executable, "-c", CLI, "controller", "--port", str(controller_port),
             "--servers", server_url, "--interval", "0.5"],
            cwd=project_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"{controller_url}/health", timeout=120, process=processes[1])
        yield {"project": project, "server": server_url, "controller": controller_url}
    finally:
        for process in reversed(processes):
            stop(process)


def fired_since(project: Project, since: float) -> dict[str, float]:
    """Trigger kind -> when the controller first fired it after `since`."""
    first: dict[str, float] = {}
    for event in project.store.events(project.model_name, kinds=["trigger"], since=since):
        first.setdefault(str(event.data.get("kind")), event.ts)
    return first


def test_a_lone_controller_fires_its_watchers_and_a_lone_server_exports_every_gauge(
        split: dict[str, object]) -> None:
    project = split["project"]
    assert isinstance(project, Project)
    server, controller = str(split["server"]), str(split["controller"])
    replayer = Replayer(server, batch_rows=40, clients=2, label_delay=0.3, max_rate_rows=400)
    replayer.start()
    try:
        time.sleep(8)  # calm: the change detector learns its in-control error rate
        degraded_at = time.time()
        replayer.world.shift, replayer.world.concept, replayer.world.label_noise = 0.6, 1.0, 0.1
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and \
                not set(fired_since(project, degraded_at)) >= WATCHED:
            time.sleep(1)
        fired = fired_since(project, degraded_at)

        # a canary by hand: the server follows the registry, the controller analyses it
        project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.3,
                                                   started_at=time.time()), "canary")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            scraped = samples(server)
            if scraped.get("tether_rollout_weight_ratio") and any(
                    labels.get("route") == "canary" for labels, _ in
                    scraped.get("tether_live_metric_samples", [])):
                break
            time.sleep(1)
        from_controller = samples(controller)
    finally:
        replayer.stop()

    assert set(fired) >= WATCHED, fired
    skipped = project.store.events(project.model_name, kinds=["trigger_skipped"],
                                   since=degraded_at)
    assert skipped and all(e.reason.startswith("budget: ") for e in skipped)
    assert project.store.events(project.model_name, kinds=["controller_error"]) == []

    server_gauges = {name for name in queried_gauges()
                     if METRICS[name].source in ("server", "monitoring")}
    assert {name for name in server_gauges if not scraped.get(name)} == set()
    assert "tether_drift_share_ratio" in scraped
    assert {labels["route"] for labels, _ in scraped["tether_model_info"]} == {"champion",
                                                                               "canary"}

    assert [(labels["version"], value) for labels, value in
            from_controller["tether_rollout_step"]] == [("2", 0.0)]
    counted = {labels["kind"]: value for labels, value in
               from_controller["tether_triggers_total"]}
    assert all(counted.get(kind, 0) >= 1 for kind in WATCHED), counted
    conditions = {(labels["condition"], labels["status"]) for labels, value in
                  from_controller["tether_controller_condition"] if value == 1}
    assert ("Healthy", "True") in conditions and ("Rollout", "True") in conditions
