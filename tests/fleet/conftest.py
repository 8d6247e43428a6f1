"""One fleet for the module's scenarios (they run in order on it): the MLflow server
started here is this fleet's own, since a scenario stops it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import POSTGRES_URL, write_project
from tests.deploy.conftest import (  # noqa: F401  (fixtures shared with tests/deploy)
    chart_mlflow_command,
    render_chart,
    run_mlflow_server,
    s3_endpoint,
)
from tests.fleet import nginx
from tests.fleet.fleet import ADMIN_TOKEN, ALERTMANAGER_TOKEN, Fleet
from tests.stack import MISSING
from tether import lifecycle
from tether.store import metadata

REPLICAS = 3
# Time constants of the fleet's scenarios, shortened from the shipped ones so the module
# runs in minutes; TETHER_FLEET_OUTAGE_SECONDS lengthens the MLflow outage (default 30).
OUTAGE_SECONDS = float(os.environ.get("TETHER_FLEET_OUTAGE_SECONDS", "30"))
ALERT_FOR = {"TetherServingVersionMismatch": "2s"}
POLICY = {
    "gate.floors": {"roc_auc": 0.55},
    "monitoring.window_size": 800, "monitoring.min_labels": 100,
    "monitoring.interval_seconds": 0.5, "monitoring.drift_share_threshold": 0.3,
    # drift retrains once; the cool-down keeps the later scenarios free of retrains
    "triggers.drift_consecutive": 3, "triggers.metric_floor": None,
    "triggers.metric_drop": None, "triggers.on_change_detected": False,
    "triggers.cooldown_seconds": 3600, "triggers.max_retrains_per_day": 1,
    # one canary step at 30%, long enough to count a few hundred requests through nginx
    "rollout.steps": [0.3], "rollout.min_predictions": 2400, "rollout.min_labels": 300,
    "rollout.step_timeout_seconds": 180, "rollout.max_metric_drop": 0.05,
    "rollout.max_p99_latency_ms": 5000,
    "rollback.probation_seconds": 60, "rollback.probation_min_predictions": 300,
}


@pytest.fixture(scope="module")
def fleet(chart_mlflow_command: list[str], s3_endpoint: str | None,  # noqa: F811
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if MISSING or nginx.NGINX is None:
        pytest.skip(MISSING or "needs Debian's nginx (.ci/run installs it)")
    if not POSTGRES_URL:
        pytest.skip("TETHER_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL 15)")
    metadata.drop_all(sa.create_engine(POSTGRES_URL))
    folder = tmp_path_factory.mktemp("fleet")
    with run_mlflow_server(chart_mlflow_command, s3_endpoint, folder) as mlflow:
        write_project(folder, **POLICY)
        policy = yaml.safe_load((folder / "tether.yaml").read_text())
        policy["model"]["name"] = f"fleet-{uuid.uuid4().hex[:8]}"  # the database outlives runs
        (folder / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("TETHER_", "GITHUB_"))}
        env.update({
            "TETHER_TRACKING_URI": mlflow["url"], "TETHER_ARTIFACT_ROOT": "mlflow-artifacts:/fleet",
            "TETHER_HOME": str(folder / ".tether"), "TETHER_STORE_URL": POSTGRES_URL,
            "TETHER_ADMIN_TOKEN": ADMIN_TOKEN, "TETHER_ALERTMANAGER_TOKEN": ALERTMANAGER_TOKEN,
            "TETHER_POLL_SECONDS": "2", "MLFLOW_DISABLE_TELEMETRY": "true"})
        fleet = Fleet(folder, env, mlflow)
        try:
            project = fleet.project
            first = lifecycle.train(project, reason="first champion")
            lifecycle.promote(project, first.version, "first champion")
            for _ in range(REPLICAS):
                fleet.start(fleet.add_replica())
            fleet.start_controller()
            fleet.start_balancer()
            fleet.start_monitoring(ALERT_FOR)
            yield fleet
        finally:
            fleet.close()


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, object]]:
    """The figures the scenarios measured, printed together at the end."""
    found: dict[str, object] = {}
    yield found
    print("\nfleet figures:")
    for name, value in found.items():
        print(f"  {name}: {value}")

