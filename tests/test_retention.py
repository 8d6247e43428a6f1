"""The retention policy, applied by `tether prune` and by the controller."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.control.controller import Controller
from tether.project import Project
from tether.store import PredictionRecord, Store

DAY = 86400.0
NOW = time.time()


def _log(store: Store, model: str, ts: float, n: int = 3) -> list[str]:
    ids = [f"{model}-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    store.log_predictions([PredictionRecord(
        id=pid, model_name=model, model_version=1, route="champion", features={"x": 1.0},
        prediction=1.0, score=0.8, latency_ms=2.0, ts=ts) for pid in ids])
    return ids


def test_tether_prune_applies_the_policy_and_records_it(project_dir: Path) -> None:
    project = Project.open(project_dir / "tether.yaml")
    now = time.time()
    _log(project.store, project.model_name, now - 45 * DAY, n=5)
    _log(project.store, project.model_name, now - 5 * DAY, n=2)
    result = CliRunner().invoke(app, ["prune", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"batches": 1, "predictions": 5, "labels": 0,
                                         "totals": 1}  # its 5-second traffic totals
    (event,) = project.store.events(project.model_name, kinds=["pruned"])
    assert event.reason == ("deleted 5 predictions and 0 labels older than 30 days and 1 "
                            "kept totals (per 5 s: older than 7 days; per minute: older "
                            "than 400 days)")
    result = CliRunner().invoke(app, ["prune", "--predictions-days", "1", "--json"])
    assert json.loads(result.output)["predictions"] == 2
    bad = CliRunner().invoke(app, ["prune", "--predictions-days", "-1"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_the_controller_prunes_once_per_interval(project_dir: Path) -> None:
    project = Project.open(project_dir / "tether.yaml")
    clock_now = [time.time()]
    controller = Controller(project, clock=lambda: clock_now[0])
    _log(project.store, project.model_name, clock_now[0] - 31 * DAY)
    assert controller.tick().lines() == ["apply the retention policy (deleted 3 predictions "
                                         "and 1 kept totals)"]
    _log(project.store, project.model_name, clock_now[0] - 31 * DAY)
    assert controller.tick().lines() == []  # within the hour
    project.store.release_lock(controller.lock_name, controller.owner)
    restarted = Controller(project, clock=lambda: clock_now[0])
    assert restarted.tick().lines() == []  # the persisted status says when it last pruned
    clock_now[0] += 3601
    assert restarted.tick().lines() == ["apply the retention policy (deleted 3 predictions "
                                         "and 1 kept totals)"]


@pytest.mark.parametrize("days", ["0", "abc"])
def test_bad_retention_in_the_policy_is_one_line(project_dir: Path, days: str) -> None:
    policy = project_dir / "tether.yaml"
    text = policy.read_text()
    assert "  predictions_days: 30\n" in text
    policy.write_text(text.replace("  predictions_days: 30\n", f"  predictions_days: {days}\n"))
    result = CliRunner().invoke(app, ["prune"])
    assert result.exit_code != 0
    assert "retention.predictions_days" in result.output and "Traceback" not in result.output
