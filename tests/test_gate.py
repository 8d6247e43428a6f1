"""The gate: pure assessments in the metric's direction, and a latency verdict that two
CPU-bound neighbours cannot flip (real `tether gate` processes, real registry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import busy_cores, use_trained, write_project
from tether import lifecycle
from tether.config import GatePolicy
from tether.gate import assess
from tether.latency import Timing
from tether.project import Project
from tether.scoring import Scores
from tether.verdict import Verdict

TETHER = str(Path(sys.executable).parent / "tether")


def test_a_lower_rmse_is_better_and_the_message_says_so() -> None:
    result = assess(Scores({"rmse": 54.2, "mae": 40.0}), Scores({"rmse": 56.1, "mae": 41.0}),
                    task="regression", primary="rmse",
                    policy=GatePolicy(min_delta=1.0, floors={"rmse": 60.0}))
    assert result.passed
    assert [c.message for c in result.checks] == [
        "rmse 54.2 below ceiling 60",
        "rmse 56.1 -> 54.2 (champion -> challenger), 1.9 better; meets min_delta 1"]
    worse = assess(Scores({"rmse": 58.0}), Scores({"rmse": 56.1}), task="regression",
                   primary="rmse", policy=GatePolicy(floors={"rmse": 0.7}))
    assert [c.verdict for c in worse.checks] == [Verdict.FAIL, Verdict.FAIL]
    assert worse.summary == ("failed: rmse 58 worse than ceiling 0.7; rmse 56.1 -> 58 "
                             "(champion -> challenger), 1.9 worse; short of min_delta 0")


def test_an_undefined_metric_is_inconclusive_and_does_not_pass() -> None:
    one_class = Scores({"roc_auc": None}, {"roc_auc": "the labels hold one class only (all 0)"})
    result = assess(one_class, Scores({"roc_auc": 0.8}), task="binary_classification",
                    primary="roc_auc", policy=GatePolicy(floors={"roc_auc": 0.7}))
    assert result.verdict is Verdict.INCONCLUSIVE and not result.passed
    assert result.checks[0].message == ("roc_auc undefined on these rows (the labels hold one "
                                        "class only (all 0)), so its floor 0.7000 cannot be "
                                        "checked")
    assert result.as_dict()["checks"][1]["value"] is None


def test_latency_is_judged_against_the_champion_and_a_ceiling() -> None:
    policy = GatePolicy(max_latency_ratio=2.0, max_latency_ms=50.0)
    scores = Scores({"roc_auc": 0.8})

    def verdicts(mine: float, theirs: float) -> list[str]:
        latency = {"challenger": Timing(mine, mine * 3, 31), "champion": Timing(theirs, 1, 31)}
        result = assess(scores, scores, task="binary_classification", primary="roc_auc",
                        policy=policy, latency=latency)
        return [c.verdict.value for c in result.checks if c.name.startswith("latency")]

    assert verdicts(7.0, 6.0) == ["pass", "pass"]
    assert verdicts(30.0, 10.0) == ["fail", "pass"]      # three times slower
    assert verdicts(0.3, 0.05) == ["pass", "pass"]       # x6, but within 1 ms
    assert verdicts(60.0, 40.0) == ["pass", "fail"]      # above the absolute ceiling


def gate(folder: Path) -> dict[str, object]:
    result = subprocess.run([TETHER, "gate", "--version", "2", "--json"], cwd=folder,
                            capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("TETHER_")})
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_two_cpu_bound_neighbours_do_not_change_the_gate_verdict(
        project_dir: Path, trained_template: Path) -> None:
    """The product's own latency limits (50 ms ceiling, x2 the champion), one-row calls."""
    write_project(project_dir, **{"gate.max_latency_ms": 50, "gate.latency_batch_rows": 1})
    use_trained(project_dir, trained_template)
    lifecycle.promote(Project.open(project_dir / "tether.yaml"), 1)
    idle = gate(project_dir)
    with busy_cores(2):
        busy = gate(project_dir)
    for result in (idle, busy):
        assert result["passed"] is True, result["message"]
        latency = {c["name"]: c for c in result["checks"]  # type: ignore[attr-defined]
                   if c["name"].startswith("latency")}
        assert latency["latency_ratio"]["passed"] and latency["latency_ceiling"]["passed"]
        # the same model twice: the CPU time per call agrees whatever the neighbours do
        assert 0.5 <= latency["latency_ratio"]["value"] <= 2.0
    assert [(c["name"], c["verdict"]) for c in idle["checks"]] == \
        [(c["name"], c["verdict"]) for c in busy["checks"]]  # type: ignore[attr-defined]
