"""The controller: one reconcile pass at a time over the registry and the event log.

`tick()` reads what is (registry aliases and rollout tag, prediction log, events),
decides, writes the registry, records the decision with its numbers and pushes the
change to the servers. It keeps no state between passes that it cannot rebuild from
the registry and the event log, so a controller killed at any point and started again
carries on (or aborts cleanly) from what the registry says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from tether import lifecycle
from tether.config import RolloutPolicy
from tether.control.analysis import Analysis, Verdict, assess
from tether.control.github import DEFAULT_API_URL, dispatch
from tether.control.metrics import ControllerMetrics
from tether.control.observe import Estimator, arm_stats
from tether.control.triggers import Action, Trigger, TriggerKind, admit, dedupe, schedule_due
from tether.errors import TetherError
from tether.project import Project
from tether.registry import RegistryState, RolloutSpec, State

__all__ = ["Controller"]

log = logging.getLogger("tether.controller")

LOCK_PREFIX = "controller/"
RETRAIN_EVENTS = ("retrain_started",)


class Controller:
    """Drives one model's loop; safe to run in several processes (one holds the lock)."""

    def __init__(self, project: Project, *, push: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time, owner: str | None = None,
                 watch: Callable[[RegistryState, float], list[Trigger]] | None = None,
                 metrics: ControllerMetrics | None = None, lock_ttl: float = 15.0,
                 estimator: Estimator | None = None) -> None:
        self.project = project
        self.push = push
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.watch = watch
        self.metrics = metrics
        self.lock_ttl = lock_ttl
        self.estimator = estimator
        # set by an embedded server: swap to an already loaded version without waiting
        # for a registry read (the push that follows reconciles everything else)
        self.switch: Callable[[int], None] | None = None
        self.inbox: queue.SimpleQueue[Trigger] = queue.SimpleQueue()
        self.last_analysis: dict[str, Any] | None = None
        self.on_tick: Callable[[list[str]], None] | None = None
        self._pruned_at: float | None = None

    @property
    def lock_name(self) -> str:
        return LOCK_PREFIX + self.project.model_name

    # inputs ------------------------------------------------------------------------

    def submit(self, trigger: Trigger) -> None:
        """Hand a trigger to the next pass (thread-safe); it is recorded at once."""
        self.project.record("trigger", trigger.reason, data=trigger.as_dict())
        if self.metrics is not None:
            self.metrics.triggers.labels(self.project.model_name, trigger.kind.value).inc()
        self.inbox.put(trigger)

    # the pass ----------------------------------------------------------------------

    def tick(self) -> list[str]:
        """One reconcile pass; returns what it did, one line per action."""
        now = self.clock()
        if not self.project.store.acquire_lock(self.lock_name, self.owner, self.lock_ttl):
            holder = self.project.store.lock_owner(self.lock_name)
            return [f"standby: {holder} holds the controller lock"]
        done: list[str] = []
        state = self._repaired(self.project.registry.state(), done)
        if state.rollout is None and state.champion is not None:
            # a bad champion is rolled back before anything else is considered
            state = self._probation(state, now, done)
        triggers = self._drain()
        if self.watch is not None:
            triggers += self.watch(state, now)
        triggers += self._scheduled(now)
        for trigger in dedupe(triggers):
            state = self._handle(trigger, state, now, done)
        if state.rollout is not None:
            self._advance(state, state.rollout, now, done)
        elif (ready := self._ready_candidate(state)) is not None:
            self._start_rollout(state, ready, now, done)
        self._prune(now, done)
        if self.metrics is not None:
            self.metrics.observe_state(self.project.registry.state() if done else state)
            self.metrics.observe_actions(done)
        if done and self.on_tick is not None:
            self.on_tick(done)
        return done

    def _prune(self, now: float, done: list[str]) -> None:
        """The retention policy, once per `retention.prune_interval_seconds`."""
        every = self.project.policy.retention.prune_interval_seconds
        if self._pruned_at is not None and now - self._pruned_at < every:
            return
        self._pruned_at = now
        result = lifecycle.prune(self.project, now=now)
        if result.batches or result.totals:
            done.append(f"pruned {result.predictions} predictions and {result.totals} "
                        "kept totals past the retention policy")

    def run(self, stop: threading.Event, interval: float | None = None) -> None:
        """Tick until `stop` is set; errors are logged as events, never fatal."""
        pause = interval or self.project.policy.monitoring.interval_seconds
        heartbeat = threading.Thread(target=self._hold_lease, args=(stop,), daemon=True,
                                     name="tether-controller-lease")
        heartbeat.start()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except TetherError as exc:
                    log.warning("controller pass failed: %s", exc)
                    self._record_safely("controller_error", str(exc))
                stop.wait(pause)
        finally:
            with contextlib.suppress(TetherError):
                self.project.store.release_lock(self.lock_name, self.owner)

    @asynccontextmanager
    async def running(self, interval: float | None = None) -> AsyncIterator[None]:
        """The reconcile loop in a thread for the duration of the block (an app lifespan)."""
        stop = threading.Event()
        worker = threading.Thread(target=self.run, args=(stop, interval),
                                  name="tether-controller", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(worker.join, 60)

    def _hold_lease(self, stop: threading.Event) -> None:
        """Renew the lease while a long pass (a retrain) runs; never take it from another."""
        while not stop.wait(self.lock_ttl / 3):
            try:
                if self.project.store.lock_owner(self.lock_name) == self.owner:
                    self.project.store.acquire_lock(self.lock_name, self.owner, self.lock_ttl)
            except TetherError as exc:
                log.warning("lease renewal failed: %s", exc)

    # steps -------------------------------------------------------------------------

    def _repaired(self, state: RegistryState, done: list[str]) -> RegistryState:
        if not state.problems:
            return state
        fixed = lifecycle.repair(self.project, expected=state)
        if fixed:
            done.append("repaired: " + "; ".join(fixed))
            self._push()
        return self.project.registry.state()

    def _drain(self) -> list[Trigger]:
        found = []
        while True:
            try:
                found.append(self.inbox.get_nowait())
            except queue.Empty:
                return found

    def _scheduled(self, now: float) -> list[Trigger]:
        cron = self.project.policy.triggers.schedule
        if not cron:
            return []
        last = self.project.store.events(self.project.model_name, kinds=["schedule_fired"],
                                         limit=1)
        last_run = last[0].ts if last else None
        if not schedule_due(cron, last_run, now):
            return []
        self.project.record("schedule_fired", f"cron {cron!r}")
        return [Trigger(TriggerKind.SCHEDULE, f"schedule {cron!r}", ts=now)]

    def _handle(self, trigger: Trigger, state: RegistryState, now: float,
                done: list[str]) -> RegistryState:
        if trigger.action is Action.ROLLBACK:
            return self._rollback(state, f"{trigger.kind.value}: {trigger.reason}", done)
        retrains = [e.ts for e in self.project.store.events(
            self.project.model_name, kinds=list(RETRAIN_EVENTS), since=now - 86_400)]
        admitted, why = admit(trigger, retrains, self.project.policy.triggers, now)
        if not admitted:
            self.project.record("trigger_skipped", why, data=trigger.as_dict())
            done.append(f"skipped {trigger.kind.value}: {why}")
            return state
        if state.rollout is not None:
            why = f"version {state.rollout.version} is rolling out; one rollout at a time"
            self.project.record("trigger_skipped", why, data=trigger.as_dict())
            done.append(f"skipped {trigger.kind.value}: {why}")
            return state
        repo = self.project.policy.triggers.github_repo
        if repo is not None:
            return self._dispatch(repo, trigger, state, done)
        self.project.record("retrain_started", f"{trigger.kind.value}: {trigger.reason}",
                            data=trigger.as_dict())
        if self.metrics is not None:
            self.metrics.retrains.labels(self.project.model_name, trigger.kind.value).inc()
        try:
            result = lifecycle.train(self.project, reason=f"{trigger.kind.value}: "
                                                          f"{trigger.reason}")
            verdict = lifecycle.gate(self.project, result.version)
        except TetherError as exc:
            done.append(f"retrain failed: {exc}")
            return self.project.registry.state()
        done.append(f"trained version {result.version}; gate "
                    f"{'passed' if verdict.passed else 'failed'}")
        return self.project.registry.state()

    def _dispatch(self, repo: str, trigger: Trigger, state: RegistryState,
                  done: list[str]) -> RegistryState:
        """Hand the retrain to CI: GitHub's repository_dispatch, as seed 000 wires it."""
        payload = {"model_name": self.project.model_name,
                   "trigger_reason": f"{trigger.kind.value}: {trigger.reason}"}
        try:
            dispatch(repo, os.environ.get("TETHER_GITHUB_TOKEN"), "model-performance-drop",
                     payload, api_url=os.environ.get("TETHER_GITHUB_API_URL", DEFAULT_API_URL))
        except TetherError as exc:
            self.project.record("dispatch_failed", str(exc), data=trigger.as_dict())
            done.append(f"dispatch failed: {exc}")
            return state
        # counts against the budget and cool-down like a local retrain
        self.project.record("retrain_started", f"dispatched to {repo}: {trigger.reason}",
                            data={**trigger.as_dict(), "github_repo": repo})
        done.append(f"dispatched model-performance-drop to {repo}")
        return state

    def _ready_candidate(self, state: RegistryState) -> int | None:
        """The newest candidate that passed its gate after the champion was made."""
        champion = state.version(state.champion) if state.champion is not None else None
        for info in sorted(state.versions, key=lambda v: v.version, reverse=True):
            if info.state != State.CANDIDATE or not (info.gate and info.gate.get("passed")):
                continue
            if champion is not None and info.version < champion.version:
                return None
            return info.version
        return None

    def _start_rollout(self, state: RegistryState, version: int, now: float,
                       done: list[str]) -> None:
        policy = self.project.policy.rollout
        if state.champion is None:
            lifecycle.promote(self.project, version, "first champion: gate passed")
            done.append(f"promoted version {version} (no champion before)")
            self._push()
            return
        if policy.shadow:
            spec = RolloutSpec(version=version, mode="shadow", weight=0.0, step=0, started_at=now)
        else:
            spec = RolloutSpec(version=version, mode="canary", weight=policy.steps[0], step=0,
                               started_at=now)
        reason = _describe(spec)
        lifecycle.start_rollout(self.project, spec, reason, expected=state)
        done.append(f"rollout started: {reason}")
        self._push()

    def _advance(self, state: RegistryState, spec: RolloutSpec, now: float,
                 done: list[str]) -> None:
        if state.champion is None:
            lifecycle.stop_rollout(self.project, State.CANDIDATE, "no champion to compare with",
                                   expected=state)
            return
        analysis = self._analyse(state, spec)
        self.last_analysis = {"rollout": _spec_dict(spec), **analysis.as_dict()}
        steps = self.project.policy.rollout.steps
        if analysis.verdict is Verdict.PASS:
            if spec.mode == "shadow" or spec.step + 1 < len(steps):
                step = 0 if spec.mode == "shadow" else spec.step + 1
                following = replace(spec, mode="canary", weight=steps[step], step=step,
                                    started_at=now)
                lifecycle.update_rollout(
                    self.project, following, _describe(following), expected=state,
                    message=analysis.message,
                    data={"rollout": _spec_dict(spec), **analysis.as_dict(),
                          "next_rollout": _spec_dict(following)})
                done.append(f"step passed: {analysis.message}; now {_describe(following)}")
            else:
                self._record_analysis("rollout_step", spec, analysis)
                lifecycle.promote(self.project, spec.version,
                                  f"canary passed all {len(steps)} steps: {analysis.message}")
                done.append(f"promoted version {spec.version}")
            self._push()
            return
        deadline = spec.started_at + self.project.policy.rollout.step_timeout_seconds
        if analysis.verdict is Verdict.FAIL or now >= deadline:
            why = analysis.message if analysis.verdict is Verdict.FAIL else (
                f"inconclusive until the step deadline: {analysis.message}")
            lifecycle.stop_rollout(
                self.project, State.REJECTED, f"{spec.mode} step {spec.step}: {why}",
                expected=state, message=analysis.message,
                data={"rollout": _spec_dict(spec), **analysis.as_dict(), "reason": why})
            done.append(f"rollout of version {spec.version} aborted: {why}")
            self._push()

    def _analyse(self, state: RegistryState, spec: RolloutSpec) -> Analysis:
        policy = self.project.policy
        assert state.champion is not None
        route = "shadow" if spec.mode == "shadow" else "canary"
        challenger = arm_stats(self.project, spec.version, route, since=spec.started_at,
                               estimator=self.estimator)
        champion = arm_stats(self.project, state.champion, "champion", since=spec.started_at,
                             estimator=self.estimator)
        minimum = policy.rollout.shadow_min_predictions if spec.mode == "shadow" else None
        return assess(challenger, champion, policy.rollout, primary=policy.metric.primary,
                      task=policy.model.task.value, min_predictions=minimum)

    def _probation(self, state: RegistryState, now: float, done: list[str]) -> RegistryState:
        """After a promotion: roll back when the new champion is worse than the old one."""
        assert state.champion is not None
        if state.previous is None:
            return state
        store = self.project.store
        promoted = [e for e in store.events(self.project.model_name,
                                            kinds=["promoted", "probation_passed",
                                                   "rolled_back"], limit=5)]
        if not promoted or promoted[-1].kind != "promoted" \
                or promoted[-1].version != state.champion:
            return state
        started = promoted[-1].ts
        rollback_policy = self.project.policy.rollback
        policy = RolloutPolicy(
            min_predictions=rollback_policy.probation_min_predictions,
            min_labels=self.project.policy.rollout.min_labels,
            max_error_rate=rollback_policy.max_error_rate,
            max_metric_drop=rollback_policy.max_metric_drop,
            max_p99_latency_ms=self.project.policy.rollout.max_p99_latency_ms,
            max_latency_ratio=self.project.policy.rollout.max_latency_ratio,
            alpha=self.project.policy.rollout.alpha,
        )
        current = arm_stats(self.project, state.champion, "champion", since=started,
                            estimator=self.estimator)
        # the old champion's last window before the promotion: the same world, recently
        baseline = arm_stats(self.project, state.previous, "champion", since=None,
                             until=started, estimator=self.estimator,
                             limit=self.project.policy.monitoring.window_size)
        analysis = assess(current, baseline, policy, primary=self.project.policy.metric.primary,
                          task=self.project.policy.model.task.value, estimate_rejects=True,
                          same_window=False)
        self.last_analysis = {"probation": state.champion, **analysis.as_dict()}
        if analysis.verdict is Verdict.FAIL:
            return self._rollback(state, f"probation: version {state.champion} is worse "
                                         f"than version {state.previous}: {analysis.message}",
                                  done, numbers=analysis.as_dict())
        if now - started >= rollback_policy.probation_seconds:
            self.project.record("probation_passed", analysis.message, version=state.champion,
                                data=analysis.as_dict())
            done.append(f"probation of version {state.champion} passed")
        return state

    def _rollback(self, state: RegistryState, reason: str, done: list[str],
                  numbers: dict[str, Any] | None = None) -> RegistryState:
        if state.rollout is not None:
            lifecycle.stop_rollout(self.project, State.REJECTED, reason, expected=state,
                                   data=numbers or {})
            done.append(f"rollout of version {state.rollout.version} aborted: {reason}")
        else:
            try:
                bad, target = lifecycle.rollback(self.project, reason, numbers=numbers,
                                                 on_switch=self._switch, current=state)
            except TetherError as exc:
                self.project.record("rollback_skipped", str(exc), data=numbers or {})
                done.append(f"rollback skipped: {exc}")
                return state
            done.append(f"rolled back version {bad} to {target}: {reason}")
        self._push()
        return self.project.registry.state()

    # plumbing ----------------------------------------------------------------------

    def _record_analysis(self, kind: str, spec: RolloutSpec, analysis: Analysis,
                         **extra: Any) -> None:
        self.project.record(kind, analysis.message, version=spec.version,
                            data={"rollout": _spec_dict(spec), **analysis.as_dict(), **extra})

    def _switch(self, version: int) -> None:
        if self.switch is None:
            return
        try:
            self.switch(version)
        except Exception as exc:  # the push after the registry writes still reloads
            log.warning("fast switch to version %s failed: %s", version, exc)

    def _push(self) -> None:
        if self.push is None:
            return
        try:
            self.push()
        except Exception as exc:  # servers also poll; a failed push only costs latency
            log.warning("push to servers failed: %s", exc)
            self._record_safely("push_failed", f"{type(exc).__name__}: {exc}")

    def _record_safely(self, kind: str, reason: str) -> None:
        try:
            self.project.record(kind, reason)
        except TetherError:
            log.exception("cannot write event %s", kind)


def _describe(spec: RolloutSpec) -> str:
    if spec.mode == "shadow":
        return f"shadow: version {spec.version} scores a copy of live traffic"
    return f"canary step {spec.step}: {spec.weight:.0%} of traffic to version {spec.version}"


def _spec_dict(spec: RolloutSpec) -> dict[str, Any]:
    return {"version": spec.version, "mode": spec.mode, "weight": spec.weight,
            "step": spec.step, "started_at": spec.started_at}
