"""The canary's latency verdict on a loaded machine: a real `tether serve` process, a
real registry and store, the same model on both arms, two CPU-bound neighbours."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import busy_cores, use_trained, write_project
from tests.serving.processes import Tether
from tether import lifecycle
from tether.control.analysis import assess
from tether.control.observe import arm_stats
from tether.example.loans import generate
from tether.project import Project
from tether.registry import RolloutSpec

REQUESTS = 400
CLIENTS = 4


def send(url: str, rows: list[dict[str, object]]) -> list[int]:
    """One row a request from a few clients at once (so the champion's calls gather
    bigger batches than the canary's); returns the version that answered each."""
    def post(chunk: list[dict[str, object]]) -> list[int]:
        answered = []
        with httpx.Client(base_url=url, timeout=60) as client:
            for row in chunk:
                answer = client.post("/predict", json={"dataframe_records": [row]})
                assert answer.status_code == 200, answer.text
                answered.append(answer.json()["model_version"])
        return answered

    with ThreadPoolExecutor(CLIENTS) as pool:
        parts = pool.map(post, [rows[i::CLIENTS] for i in range(CLIENTS)])
        return [version for part in parts for version in part]


@pytest.mark.slow
def test_two_cpu_bound_neighbours_do_not_change_the_canary_latency_verdict(
        project_dir: Path, trained_template: Path) -> None:
    """Versions 1 and 2 are the same trainer on the same data: their model calls cost the
    same CPU, however long two neighbours taking both cores make the requests wait."""
    write_project(project_dir, **{"rollout.max_latency_ratio": 2.0,
                                  "rollout.max_p99_latency_ms": 1000})
    use_trained(project_dir, trained_template)
    project = Project.open(project_dir / "tether.yaml")
    lifecycle.promote(project, 1)
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.5), "test")
    target = project.policy.model.target
    rows = generate(REQUESTS, seed=3).drop(columns=[target]).to_dict(orient="records")
    server = Tether(project_dir)
    try:
        server.wait_ready()
        with busy_cores(2):
            answered = send(server.url, rows)
    finally:
        server.stop()
    assert set(answered) == {1, 2}

    spec = project.registry.state().rollout
    assert spec is not None
    challenger = arm_stats(project, 2, "canary", since=spec.started_at)
    champion = arm_stats(project, 1, "champion", since=spec.started_at)
    assert challenger.predictions + champion.predictions == REQUESTS
    analysis = assess(challenger, champion, project.policy.rollout,
                      primary=project.policy.metric.primary, task=project.policy.model.task,
                      min_predictions=1)
    check = analysis.check("latency_ratio")
    assert check is not None and check.passed, check
    assert check.value is not None and 0.5 <= check.value <= 2.0, check.message
    assert "model CPU time per call" in check.message
    compared = analysis.numbers["model_cpu"]
    assert compared["calls"] >= 50 and compared["strata"] >= 1
    assert analysis.numbers["challenger"]["model_cpu_p50_ms"] > 0
