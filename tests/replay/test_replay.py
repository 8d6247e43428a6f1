"""`tether replay` end to end: the real server, labels, controller and registry over a
short synthetic history with one abrupt change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.config import load_config
from tether.replay import ReplayOptions, load_history, replay
from tether.replay.datasets import abrupt_change

CHANGE_AT = 1200
POLICY: dict[str, Any] = {
    "model": {"name": "abrupt", "task": "binary_classification", "target": "target"},
    "trainer": "train:train",
    "trainer_params": {"max_iter": 40},
    "data": {"generator": "tether.replay.datasets:abrupt_change", "params": {"n": 300},
             "seed": 3, "recent_labeled_rows": 400},
    "metric": {"primary": "accuracy"},
    # the machine is shared: latency limits are not what this test is about
    "gate": {"floors": {"accuracy": 0.6}, "max_latency_ratio": 100, "max_latency_ms": 5000},
    "monitoring": {"window_size": 300, "min_labels": 50, "interval_seconds": 86400},
    "triggers": {"metric_floor": 0.6, "on_change_detected": False,
                 "cooldown_seconds": 30 * 86400, "max_retrains_per_day": 1},
    "rollout": {"steps": [0.5], "min_predictions": 40, "min_labels": 30,
                "step_timeout_seconds": 30 * 86400, "max_p99_latency_ms": 60000,
                "max_latency_ratio": 100},
    "rollback": {"probation_seconds": 5 * 86400, "probation_min_predictions": 40},
    "retention": {"predictions_days": 3650},
}
TRAINER = '''
from sklearn.ensemble import HistGradientBoostingClassifier


def train(ctx):
    model = HistGradientBoostingClassifier(max_iter=ctx.params.get("max_iter", 40),
                                           random_state=ctx.seed)
    model.fit(ctx.X, ctx.y, sample_weight=ctx.sample_weight)
    return model
'''


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "tether.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    (folder / "train.py").write_text(TRAINER)
    return folder / "tether.yaml"


def run(project_file: Path, seed: int) -> dict[str, Any]:
    history = load_history(abrupt_change(n=2400, change_at=CHANGE_AT, seed=seed),
                           target="target", rate="24/d", start="2020-01-01")
    return replay(history, load_config(project_file),
                  ReplayOptions(initial="400", label_delay="12h", compare="static"))


def decisions(policy: dict[str, Any]) -> list[tuple[float, str, int | None]]:
    return [(d["ts"], d["kind"], d["version"]) for d in policy["decisions"]]


def test_one_abrupt_change_one_retrain_one_promotion_and_the_same_again(
        project_file: Path) -> None:
    first = run(project_file, seed=1)
    assert first["schema"] == "tether.replay/1"
    own, static = first["policies"]
    change_ts = 1577836800.0 + CHANGE_AT * 3600.0
    after = [(kind, version) for ts, kind, version in decisions(own) if ts > change_ts]
    # one retrain, after the change, that made it through the canary to champion
    (retrain,) = [ts for ts, kind, _ in decisions(own) if kind == "retrain_started"]
    assert retrain > change_ts
    assert own["retrains"] == 1 and own["promotions"] == 1 and own["rollbacks"] == 0
    assert after.index(("rollout_started", 2)) < after.index(("promoted", 2))
    assert ("probation_passed", 2) in after
    assert "rolled_back" not in [kind for kind, _ in after]
    assert [c["kind"] for c in first["changes"]] == ["metric"]
    # the static baseline keeps the old model: worse after the change, never retrained
    assert static["retrains"] == 0 and static["promotions"] == 0
    assert own["mean_metric"] > static["mean_metric"]
    assert own["recoveries"][0]["seconds"] is not None
    assert static["recoveries"][0]["seconds"] is None
    assert own["labels_sent"] == static["labels_sent"] == 2000
    # the same seed, the same replay: decisions, their times and every window's metric
    again = run(project_file, seed=1)
    for before, after in zip(first["policies"], again["policies"], strict=True):
        assert decisions(before) == decisions(after)
        assert before["windows"] == after["windows"]
