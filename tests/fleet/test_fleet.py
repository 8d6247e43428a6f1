"""The fleet, run for real on one machine (tests/fleet/fleet.py says what runs): the loop
across 3 replicas behind nginx, convergence after a decision, a frozen replica, a
restarted replica and controller mid-canary, and an MLflow outage.

The scenarios share one fleet and run in this order; each leaves the fleet with one
champion every replica serves. Figures are printed at the end (`pytest -s`).
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import time

import httpx
import pytest

from tests.fleet.conftest import ALERT_FOR, OUTAGE_SECONDS, REPLICAS
from tests.fleet.fleet import Convergence, Fleet, Member, wait_for
from tests.fleet.traffic import Traffic
from tests.stack import query
from tether import lifecycle
from tether.control.push import PushFailed
from tether.project import Project
from tether.registry import RolloutSpec

pytestmark = [pytest.mark.fleet, pytest.mark.slow, pytest.mark.postgres]

FLIPS = int(os.environ.get("TETHER_FLEET_FLIPS", "20"))
CONVERGED_WITHIN = 30.0  # seconds: "converges", not a timing claim (benchmarks/fleet times it)
MISMATCH = "TetherServingVersionMismatch"
DECISIONS = ["promoted", "rolled_back", "rollout_started", "rollout_step", "rollout_aborted",
             "retrain_started", "probation_passed"]
# A share of requests is a binomial proportion: 4 standard errors either side of the
# weight, a false failure about once in 16,000 runs.
Z = 4.0


def shifted(traffic: Traffic) -> None:
    """The world moves: covariate shift, a new concept, noisier labels."""
    traffic.world.shift, traffic.world.concept, traffic.world.label_noise = 0.6, 1.0, 0.1


def serving_everywhere(fleet: Fleet, version: int) -> bool:
    return fleet.champions() == [version] * len(fleet.replicas)


def no_failures(project: Project, since: float) -> None:
    failed = project.store.events(project.model_name, since=since,
                                  kinds=["retrain_failed", "gate_failed", "controller_error"])
    assert not failed, f"{failed[-1].kind}: {failed[-1].reason}"


def test_drift_retrains_canaries_and_promotes_then_probation_rolls_back(
        fleet: Fleet, figures: dict[str, object]) -> None:
    project = fleet.project
    started = time.time()
    with Traffic(fleet.url) as traffic:
        time.sleep(5)  # calm: the first champion serves
        shifted(traffic)

        def canary_started() -> RolloutSpec | None:
            no_failures(project, started)
            return project.registry.state().rollout

        rollout = wait_for("drift -> retrain -> gate -> canary", canary_started, 300, 1)
        challenger, weight = rollout.version, rollout.weight

        def applied(member: Member) -> bool:
            return {"version": challenger, "route": "canary", "weight": weight} in \
                fleet.served(member)

        wait_for("every replica applies the canary", lambda: all(
            applied(r) for r in fleet.replicas), CONVERGED_WITHIN)
        applied_at = time.monotonic()
        wait_for("400 requests through nginx in the canary step", lambda: len(
            traffic.since(applied_at)) >= 400 or project.registry.state().rollout is None, 180)
        window = [a for a in traffic.since(applied_at) if a.status == 200]
        # the step ends at the first answer of the challenger as champion
        end = next((i for i, a in enumerate(window)
                    if a.route == "champion" and a.version == challenger), len(window))
        window = window[:end]
        n = len(window)
        share = sum(a.route == "canary" and a.version == challenger for a in window) / n
        tolerance = Z * math.sqrt(weight * (1 - weight) / n)
        figures["canary share through nginx"] = (
            f"{share:.3f} of {n} requests at weight {weight} (tolerance +-{tolerance:.3f}, "
            f"{Z:g} standard errors)")
        assert n >= 150, f"only {n} requests answered during the canary step"
        assert abs(share - weight) <= tolerance, (share, weight, tolerance, n)

        def promoted() -> bool:
            no_failures(project, started)
            state = project.registry.state()
            return state.champion == challenger and state.rollout is None \
                and state.challenger is None

        wait_for("the canary passes and the controller promotes", promoted, 300, 1)
        wait_for("every replica serves the new champion",
                 lambda: serving_everywhere(fleet, challenger), CONVERGED_WITHIN)
        kinds = [e.kind for e in project.store.events(project.model_name, since=started)
                 if e.kind in [*DECISIONS, "trained", "gate_passed"]]
        assert kinds[kinds.index("retrain_started"):][:4] == [
            "retrain_started", "trained", "gate_passed", "rollout_started"], kinds
        assert kinds.index("promoted") > kinds.index("rollout_started")

        # a bad release, promoted by hand past the canary: probation must catch it
        sabotaged = Project(project.config.model_copy(update={
            "policy": project.policy.model_copy(update={
                "trainer": "tether.demo.sabotage:train"})}))
        bad = lifecycle.train(sabotaged, reason="labels flipped by mistake").version
        lifecycle.promote(project, bad, "promoted by hand, skipping the canary")
        fleet.push()
        wait_for("probation rolls the bad release back",
                 lambda: project.registry.state().champion == challenger, 240, 1)
        wait_for("every replica serves the champion again",
                 lambda: serving_everywhere(fleet, challenger), CONVERGED_WITHIN)
    rolled = project.store.events(project.model_name, kinds=["rolled_back"], since=started)
    assert [(e.version, e.data["to"]) for e in rolled] == [(bad, challenger)]
    bad_share = [a for a in traffic.answers if a.version == bad]
    figures["bad release answered before the rollback"] = f"{len(bad_share)} requests"
    failed = [a for a in traffic.answers if a.status != 200]
    assert failed == [], failed[:5]


def test_flips_converge_under_load_with_no_failed_request(
        fleet: Fleet, figures: dict[str, object]) -> None:
    """20 decisions (alias writes, then the controller's push), traffic through nginx."""
    assert fleet.controller is not None
    project = fleet.project
    fleet.send(fleet.controller, signal.SIGTERM)  # the flips are the only decisions
    assert fleet.controller.process is not None
    fleet.controller.process.wait(timeout=60)
    state = project.registry.state()
    champion, other = state.champion, min(v.version for v in state.versions)  # v1
    assert champion is not None and champion != other
    took: list[float] = []
    with Traffic(fleet.url) as traffic:
        shifted(traffic)
        started = time.monotonic()
        for flip in range(FLIPS):
            target = other if flip % 2 == 0 else champion
            with Convergence(fleet.replicas, target) as watch:
                lifecycle.promote(project, target, f"flip {flip + 1}")
                decided = time.monotonic()
                fleet.push()
                seen = watch.wait(CONVERGED_WITHIN)
            took.append(max(0.0, max(seen.values()) - decided))
        ended = time.monotonic()
        time.sleep(1)
    answered = traffic.since(started, ended)
    failed = [a for a in answered if a.status < 200 or a.status >= 300]
    p50, worst = statistics.median(took), max(took)
    figures["convergence after a decision (push, 3 replicas)"] = (
        f"p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms over {FLIPS} flips")
    figures["requests through nginx during the flips"] = (
        f"{len(answered)}, non-2xx {sum(a.status != 0 for a in failed)}, "
        f"socket errors {sum(a.status == 0 for a in failed)}")
    assert len(answered) > FLIPS
    assert failed == [], failed[:5]
    assert {a.version for a in answered} == {champion, other}
    assert serving_everywhere(fleet, project.registry.state().champion or 0)


def test_a_frozen_replica_raises_the_mismatch_alert_and_converges_after(
        fleet: Fleet, figures: dict[str, object]) -> None:
    project = fleet.project
    state = project.registry.state()
    assert state.champion is not None and state.previous is not None
    target = state.previous
    frozen = fleet.replicas[0]

    def firing() -> list[dict[str, object]]:
        return query(fleet.prometheus, f'ALERTS{{alertname="{MISMATCH}",'
                                       f'alertstate="firing"}}')

    # the flips of the scenario before can leave the alert firing for a few evaluations
    # after every replica has converged: the freeze starts from a quiet alert
    wait_for(f"{MISMATCH} is not firing before the freeze", lambda: not firing(), 60, 0.5)
    fleet.send(frozen, signal.SIGSTOP)
    try:
        lifecycle.promote(project, target, "promoted while a replica is frozen")
        decided = time.monotonic()
        with pytest.raises(PushFailed, match=frozen.url):
            fleet.push()
        wait_for(f"{MISMATCH} fires in Prometheus", firing, 60, 0.5)
        fired_after = time.monotonic() - decided
    finally:
        fleet.send(frozen, signal.SIGCONT)
    thawed = time.monotonic()
    wait_for("the frozen replica converges", lambda: serving_everywhere(fleet, target),
             CONVERGED_WITHIN)
    converged_after = time.monotonic() - thawed
    wait_for(f"{MISMATCH} clears", lambda: not firing(), 60, 0.5)
    # the fleet goes back to the champion it had
    lifecycle.promote(project, state.champion, "back to the champion")
    fleet.push()
    wait_for("every replica serves the champion again",
             lambda: serving_everywhere(fleet, state.champion or 0), CONVERGED_WITHIN)
    figures["frozen replica"] = (
        f"{MISMATCH} firing {fired_after:.1f} s after the decision (for: "
        f"{ALERT_FOR[MISMATCH]}); converged {converged_after:.2f} s after SIGCONT")


def test_a_replica_and_the_controller_restarted_mid_canary(
        fleet: Fleet, figures: dict[str, object]) -> None:
    project = fleet.project
    assert fleet.controller is not None
    state = project.registry.state()
    champion, canary = state.champion, state.previous  # the old champion, as a canary
    assert canary is not None
    fleet.start_controller()
    with Traffic(fleet.url) as traffic:
        shifted(traffic)
        project.registry.start_rollout(RolloutSpec(version=canary, mode="canary", weight=0.3),
                                       "canary started by hand")
        fleet.push()
        wait_for("every replica applies the canary", lambda: all(
            {"version": canary, "route": "canary", "weight": 0.3} in fleet.served(r)
            for r in fleet.replicas), CONVERGED_WITHIN)

        time.sleep(3)  # a few passes of the controller on the canary
        # the controller killed mid-canary ...
        fleet.send(fleet.controller, signal.SIGKILL)
        assert fleet.controller.process is not None
        fleet.controller.process.wait(timeout=10)
        killed = time.time()
        assert project.registry.state().rollout is not None, "the canary ended too soon"

        # ... a replica restarted mid-canary: ready only once it routes as the others do
        restarted = fleet.replicas[-1]
        fleet.send(restarted, signal.SIGTERM)
        assert restarted.process is not None
        restarted.process.wait(timeout=60)
        fleet.start(restarted, ready=None)
        answer = wait_for("the restarted replica is ready",
                          lambda: (r := httpx.get(f"{restarted.url}/ready", timeout=5))
                          .status_code == 200 and r, 120, 0.05)
        routes = fleet.served(restarted)
        assert {"version": canary, "route": "canary", "weight": 0.3} in routes, (
            answer.json(), routes)

        # ... and the controller started again
        fleet.start_controller()

        def finished() -> bool:
            state = project.registry.state()
            return state.rollout is None and state.challenger is None

        wait_for("the restarted controller finishes the canary", finished, 300, 1)
    state = project.registry.state()
    assert state.problems == []
    assert state.champion in (canary, champion)
    assert [v.version for v in state.versions if v.state == "champion"] == [state.champion]
    outcome = project.store.events(project.model_name, since=killed,
                                   kinds=["promoted", "rollout_aborted"])
    assert [e.version for e in outcome] == [canary], [(e.kind, e.reason) for e in outcome]
    wait_for("every replica serves the registry's champion, no canary",
             lambda: all(fleet.served(r) == [{"version": state.champion, "route": "champion",
                                               "weight": 1.0}] for r in fleet.replicas),
             CONVERGED_WITHIN)
    status = httpx.get(f"{fleet.controller.url}/controller/status", timeout=10).json()
    healthy = [c for c in status["status"]["conditions"] if c["type"] == "Healthy"]
    assert [c["status"] for c in healthy] == ["True"], healthy
    figures["controller killed mid-canary"] = (
        f"{outcome[0].kind} v{canary} by the restarted controller; champion "
        f"v{state.champion} in the registry, the event log and {len(fleet.replicas)} replicas")
    assert [a for a in traffic.answers if a.status != 200] == []


def test_mlflow_unreachable_the_fleet_serves_and_recovers(
        fleet: Fleet, figures: dict[str, object]) -> None:
    project = fleet.project
    champion = project.registry.state().champion
    late = fleet.add_replica()  # started during the outage, outside nginx: checked alone
    fleet.replicas.remove(late)
    with Traffic(fleet.url) as traffic:
        shifted(traffic)
        time.sleep(2)
        fleet.mlflow_signal(signal.SIGSTOP)
        began, began_wall = time.monotonic(), time.time()
        try:
            # MLflow stays down until the new server has opened its port (its start-up is
            # Python's imports, seconds on a loaded machine; nothing waits for MLflow)
            fleet.start(late, ready=None)
            listening = wait_for("a server started during the outage listens", lambda: (
                httpx.get(f"{late.url}/health", timeout=2).status_code == 200), 180, 0.05)
            opened = time.monotonic() - began
            not_ready = wait_for("it says why it is not ready", lambda: (
                r := httpx.get(f"{late.url}/ready", timeout=10)).status_code == 503
                and "registry unreachable" in r.json()["reason"] and r, 30, 0.5)
            assert not_ready.json()["ready"] is False

            def degraded() -> bool:
                return all(httpx.get(f"{r.url}/ready", timeout=5).json()[
                    "registry_reachable"] is False for r in fleet.replicas)

            wait_for("every replica says the registry is unreachable", degraded, 30, 0.5)
            for member in fleet.replicas:
                ready = httpx.get(f"{member.url}/ready", timeout=5)
                assert ready.status_code == 200, ready.text
                health = httpx.get(f"{member.url}/health?verbose=1", timeout=30).json()
                assert health["status"] == "degraded", health
            remaining = OUTAGE_SECONDS - (time.monotonic() - began)
            if remaining > 0:
                time.sleep(remaining)
            during = traffic.since(began)
        finally:
            fleet.mlflow_signal(signal.SIGCONT)
        back = time.monotonic()
        wait_for("every replica reaches the registry again", lambda: all(
            httpx.get(f"{r.url}/ready", timeout=5).json()["registry_reachable"]
            for r in fleet.replicas), 60, 0.5)
        try:
            loaded = wait_for("the late server loads the champion", lambda: (
                r := httpx.get(f"{late.url}/ready", timeout=5)).status_code == 200 and r,
                120, 0.5)
            recovered = time.monotonic() - back
            assert loaded.json()["champion"] == champion, loaded.text
            assert fleet.champions() == [champion] * REPLICAS
        finally:
            if late.process is not None:
                late.process.terminate()
                late.process.wait(timeout=60)
        decisions = project.store.events(project.model_name, since=began_wall,
                                         kinds=DECISIONS)
        assert decisions == [], [(e.kind, e.reason) for e in decisions]
    assert listening
    failed = [a for a in during if a.status != 200]
    assert len(during) > 10 and failed == [], failed[:5]
    assert project.registry.state().champion == champion
    figures["MLflow outage"] = (
        f"{OUTAGE_SECONDS:g} s: {len(during)} requests answered, 0 failed; a server started "
        f"during it listened after {opened:.2f} s (not ready), loaded the champion "
        f"{recovered:.1f} s after MLflow returned")
