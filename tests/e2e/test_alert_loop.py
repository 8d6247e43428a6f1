"""The real loop: `tether up`, Prometheus scraping it with tether's alert rules,
Alertmanager routing to tether's webhook. Degraded traffic must end in a retrained,
canaried, promoted version, with the registry and the event log agreeing.

The deployed configs are used as shipped, with only the addresses, the credentials
file and the time constants (scrape every second, `for:` and group waits shortened)
rewritten for a test that must finish in minutes.
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

from tests.conftest import write_project
from tests.processes import stop
from tests.stack import MISSING, query, start_alertmanager, start_prometheus
from tether import lifecycle
from tether.demo.traffic import Replayer
from tether.net import free_port, wait_http
from tether.project import Project

TOKEN = "e2e-alert-token"
CLI = "from tether.cli import main; main()"
ALERT = "TetherModelMetricBelowFloor"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
]


@pytest.fixture
def loop(project_dir: Path, tmp_path: Path) -> Iterator[dict[str, object]]:
    write_project(project_dir, **{
        "gate.floors": {"roc_auc": 0.55},
        "monitoring.window_size": 600, "monitoring.interval_seconds": 1.0,
        "monitoring.min_labels": 100,
        # the controller's own watchers stay quiet: the retrain must come from the alert
        "triggers.metric_floor": None, "triggers.metric_drop": None,
        "triggers.on_change_detected": False, "triggers.drift_consecutive": 100_000,
        "triggers.cooldown_seconds": 3600, "triggers.max_retrains_per_day": 1,
        "rollout.steps": [0.2, 0.5], "rollout.min_predictions": 150,
        "rollout.min_labels": 80, "rollout.step_timeout_seconds": 120,
        "rollout.max_metric_drop": 0.05, "rollout.max_p99_latency_ms": 2000,
        # This test is about the alert's path to a promotion. A probation on a few
        # hundred label-free estimates may roll back: that verdict has tests of its own
        # (tests/control/test_analysis.py).
        "rollback.max_metric_drop": 0.5,
    })
    project = Project.open(project_dir / "tether.yaml")
    lifecycle.train(project)
    lifecycle.promote(project, 1, "first champion")

    tether_port, prom_port, am_port = free_port(), free_port(), free_port()
    env = {**os.environ, "TETHER_ALERTMANAGER_TOKEN": TOKEN, "TETHER_POLL_SECONDS": "1"}
    processes = [subprocess.Popen(
        [sys.executable, "-c", CLI, "up", "--port", str(tether_port), "--interval", "0.5"],
        cwd=project_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_http(f"http://127.0.0.1:{tether_port}/ready")
        configs = tmp_path / "monitoring"
        configs.mkdir()
        processes.append(start_alertmanager(
            configs, am_port, f"http://127.0.0.1:{tether_port}/hooks/alertmanager", TOKEN))
        processes.append(start_prometheus(configs, prom_port,
                                          {"tether": [f"127.0.0.1:{tether_port}"]}, am_port,
                                          {ALERT: "1s"}))
        wait_http(f"http://127.0.0.1:{am_port}/-/ready")
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
        yield {"project": project, "tether": f"http://127.0.0.1:{tether_port}",
               "prometheus": f"http://127.0.0.1:{prom_port}"}
    finally:
        for process in reversed(processes):
            stop(process)


def crossing_time(prometheus: str, start: float, end: float) -> float | None:
    """When the floor alert's expression first held, at 1 s resolution."""
    expression = ('tether_live_metric_ci_upper{route="champion",metric="roc_auc"} < 0.70 '
                  'and on (model, version, route) '
                  'tether_live_metric_samples{route="champion"} >= 100')
    answer = httpx.get(f"{prometheus}/api/v1/query_range", timeout=10, params={
        "query": expression, "start": start, "end": end, "step": "1s"}).json()
    times = [float(t) for series in answer["data"]["result"] for t, _ in series["values"]]
    return min(times) if times else None


def test_alert_fires_retrains_canaries_and_promotes(loop: dict[str, object]) -> None:
    project = loop["project"]
    assert isinstance(project, Project)
    prometheus = str(loop["prometheus"])
    replayer = Replayer(str(loop["tether"]), batch_rows=40, clients=2, label_delay=0.3,
                        max_rate_rows=800)
    replayer.start()
    try:
        time.sleep(4)
        degraded_at = time.time()
        replayer.world.shift, replayer.world.concept, replayer.world.label_noise = 0.6, 1.0, 0.1
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            # the promotion's event is written after its last registry write
            if any(e.version == 2 for e in
                   project.store.events(project.model_name, kinds=["promoted"])):
                break
            aborted = project.store.events(project.model_name,
                                           kinds=["rollout_aborted", "gate_failed",
                                                  "retrain_failed"])
            assert not aborted, f"{aborted[-1].kind}: {aborted[-1].reason}"
            time.sleep(1)
    finally:
        replayer.stop()

    settle = time.monotonic() + 30  # the rollout's routing is cleared in the same pass
    state = project.registry.state()
    while (state.rollout is not None or state.challenger is not None) and \
            time.monotonic() < settle:
        time.sleep(0.5)
        state = project.registry.state()
    assert (state.champion, state.previous, state.challenger, state.rollout) == (2, 1, None, None)
    assert state.problems == []
    events = project.store.events(project.model_name)
    # repeated notifications of the same alert are recorded and skipped (one rollout at a
    # time, then the cool-down): the decisions are the rest
    kinds = [e.kind for e in events if e.kind not in ("trigger", "trigger_skipped")]
    trigger = next(e for e in events if e.kind == "trigger")
    assert trigger.data["kind"] == "alertmanager"
    assert trigger.reason.startswith(ALERT)
    started = next(e for e in events if e.kind == "retrain_started")
    assert kinds[kinds.index("retrain_started"):] == [
        "retrain_started", "trained", "gate_passed", "rollout_started", "rollout_step",
        "rollout_step", "promoted"]
    promoted = next(e for e in events if e.kind == "promoted" and e.version == 2)
    assert "canary passed all 2 steps" in promoted.reason
    info = state.version(2)
    assert info is not None and info.state == "champion"
    assert info.gate is not None and info.gate["passed"] is True

    fired = query(prometheus, f'ALERTS{{alertname="{ALERT}"}}')
    crossed = crossing_time(prometheus, degraded_at, started.ts)
    assert crossed is not None
    report = {"metric_crossed_to_retrain_started_s": round(started.ts - crossed, 2),
              "alert_series_seen": len(fired)}
    print(f"\nmetric crossed the floor -> retraining started: {report} ")
