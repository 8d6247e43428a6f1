"""The controller: one reconcile pass at a time, observe -> plan -> apply -> status.

```
tick():  lease -> observe (registry, store, triggers, last status) -> plan (pure)
               -> apply (registry, events, push, retrain worker) -> status (persisted)
```

A pass keeps nothing in memory that it cannot rebuild: the registry holds the state, the
event log the history, and the persisted status what the last pass concluded (conditions
with their `since`, the watchers' edges, when the store was last pruned). A controller
killed at any point and started again carries on (or aborts cleanly) from there. Several
controllers may run; the one holding the store's lease acts, the others stand by.

A pass that fails (the store or the registry unreachable) is retried with exponential
back-off; the failure is logged and recorded once per change, not once per pass, and
`tether status` shows it as the condition Healthy=False.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tether.control import status as st
from tether.control.actions import (
    REGISTRY_CHANGES,
    AbortRollout,
    Action,
    PassProbation,
    Promote,
    Prune,
    RollBack,
    SetStep,
    Wait,
    decided,
)
from tether.control.apply import Applied, Applier
from tether.control.clock import Clock
from tether.control.conditions import conditions, failed_pass
from tether.control.metrics import ControllerMetrics
from tether.control.observe import Observed, Watcher, observe
from tether.control.plan import plan
from tether.control.status import ControllerStatus
from tether.control.triggers import Trigger, TriggerKind
from tether.control.worker import Retrain, RetrainWorker, train_and_gate
from tether.errors import TetherError
from tether.events import EventKind
from tether.monitoring.monitor import Monitor
from tether.project import Project

__all__ = ["MAX_BACKOFF_SECONDS", "Controller", "Pass", "backoff"]

log = logging.getLogger("tether.controller")

LOCK_PREFIX = "controller/"
MAX_BACKOFF_SECONDS = 300.0
ANALYSED = (SetStep, Promote, AbortRollout, Wait, PassProbation, RollBack)


def backoff(pause: float, failures: int) -> float:
    """Seconds before the next pass after `failures` failed passes in a row.

    >>> [backoff(10.0, n) for n in range(6)]
    [10.0, 20.0, 40.0, 80.0, 160.0, 300.0]
    """
    return min(pause * 2 ** failures, max(MAX_BACKOFF_SECONDS, pause))


@dataclass(frozen=True)
class Pass:
    """What one pass saw, decided and did."""

    observed: Observed | None = None
    actions: tuple[Action, ...] = ()
    applied: tuple[Applied, ...] = ()
    status: ControllerStatus | None = None
    standby: str | None = None  # the lease holder, when this controller stood by

    def of(self, kind: type) -> list[Action]:
        """The applied actions of one type."""
        return [a.action for a in self.applied if a.ok and isinstance(a.action, kind)]

    def lines(self) -> list[str]:
        """One line per action, for people."""
        if self.standby is not None:
            return [f"standby: {self.standby} holds the controller lock"]
        return [a.line() for a in self.applied]


class Controller:
    """Drives one model's loop; safe to run in several processes (one holds the lease).

    `monitor` gives the controller its own triggers (drift, metric, change detector) and
    the label-free estimates a canary is judged on before labels arrive; without it the
    controller acts only on what it is sent (hooks, people, the schedule) and on labels.
    `retrain` replaces training and gating (default: the project's trainer, then the gate).
    `watchers` are drift watchers that read and remember for themselves (the federated
    per-site drift); their triggers fire on the pass that observes them.
    """

    def __init__(self, project: Project, *, push: Callable[[], None] | None = None,
                 clock: Clock | None = None, owner: str | None = None,
                 monitor: Monitor | None = None, metrics: ControllerMetrics | None = None,
                 lock_ttl: float = 15.0, retrain: Retrain | None = None,
                 watchers: Sequence[Watcher] = ()) -> None:
        self.project = project
        self.clock: Clock = clock or project.clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.monitor = monitor
        self.watchers = tuple(watchers)
        self.metrics = metrics
        self.lock_ttl = lock_ttl
        self.worker = RetrainWorker(retrain or train_and_gate(project), self.clock)
        self.applier = Applier(project, self.worker, push=push)
        self._inbox: list[Trigger] = []
        self._inbox_lock = threading.Lock()
        self._status: ControllerStatus | None = None
        self._failures = 0

    @property
    def lock_name(self) -> str:
        return LOCK_PREFIX + self.project.model_name

    @property
    def push(self) -> Callable[[], None] | None:
        """Tells the servers to reload (set by the process that runs them)."""
        return self.applier.push

    @push.setter
    def push(self, push: Callable[[], None] | None) -> None:
        self.applier.push = push

    @property
    def switch(self) -> Callable[[int], None] | None:
        """An embedded server's swap to an already loaded version, called the moment a
        rollback moves the champion alias (the push that follows reconciles the rest)."""
        return self.applier.switch

    @switch.setter
    def switch(self, switch: Callable[[int], None] | None) -> None:
        self.applier.switch = switch

    @property
    def watches(self) -> frozenset[TriggerKind]:
        """The triggers this controller raises itself, from the policy and its parts."""
        kinds = set()
        triggers = self.project.policy.triggers
        if triggers.schedule:
            kinds.add(TriggerKind.SCHEDULE)
        if self.monitor is not None or self.watchers:
            kinds.add(TriggerKind.DRIFT)
            if triggers.metric_floor is not None or triggers.metric_drop is not None:
                kinds.add(TriggerKind.METRIC)
            if triggers.on_change_detected:
                kinds.add(TriggerKind.CHANGE)
        return frozenset(kinds)

    # inputs ------------------------------------------------------------------------

    def submit(self, trigger: Trigger) -> None:
        """Hand a trigger to the next pass (thread-safe); it is recorded at once."""
        self.project.record(EventKind.TRIGGER, trigger.reason, data=trigger.as_dict())
        if self.metrics is not None:
            self.metrics.received(trigger)
        with self._inbox_lock:
            self._inbox.append(trigger)

    def _pending(self) -> list[Trigger]:
        with self._inbox_lock:
            return list(self._inbox)

    def _acknowledge(self, applied: Sequence[Applied]) -> None:
        # an action the registry's moves kept from being done answers nothing: its
        # triggers wait for the next pass, planned on the registry as it is then
        answered = {id(t) for result in applied if result.moved is None
                    for t in decided(result.action)}
        with self._inbox_lock:
            self._inbox = [t for t in self._inbox if id(t) not in answered]

    # the pass ----------------------------------------------------------------------

    def tick(self) -> Pass:
        """One pass: observe, plan, apply, persist the status."""
        now = self.clock()
        store = self.project.store
        if not store.acquire_lock(self.lock_name, self.owner, self.lock_ttl):
            return Pass(standby=store.lock_owner(self.lock_name) or "another controller")
        previous = self._previous(now)
        observed = observe(self.project, now=now, inbox=self._pending(), previous=previous,
                           monitor=self.monitor, retraining=self.worker.running,
                           last_retrain=self.worker.last, watchers=self.watchers)
        actions = plan(observed, self.project.policy, now)
        applied = self.applier.apply(actions, observed, now)
        self._acknowledge(applied)
        status = self._after(previous, observed, actions, applied, now)
        self._save(previous, status, now)
        if self.metrics is not None:
            changed = any(a.ok and isinstance(a.action, REGISTRY_CHANGES) for a in applied)
            self.metrics.observe(self.project.registry.state() if changed else
                                 observed.registry, applied, status)
        return Pass(observed=observed, actions=tuple(actions), applied=tuple(applied),
                    status=status)

    def _previous(self, now: float) -> ControllerStatus:
        if self._status is None:
            raw = self.project.store.load_status(self.project.model_name)
            self._status = (ControllerStatus.from_dict(raw) if raw is not None else
                            ControllerStatus.empty(self.project.model_name, self.owner, now))
        return self._status

    def _after(self, previous: ControllerStatus, observed: Observed, actions: list[Action],
               applied: list[Applied], now: float) -> ControllerStatus:
        moved = {id(a.action) for a in applied if a.moved is not None}
        actions = [a for a in actions if id(a) not in moved]  # the next pass speaks to it
        analysis = next((a.numbers for a in actions if isinstance(a, ANALYSED) and a.numbers),
                        previous.analysis)
        pruned = any(a.ok and isinstance(a.action, Prune) for a in applied)
        return previous.with_conditions(
            conditions(observed, actions, applied, self.project.policy, now),
            ts=now, owner=self.owner, actions=tuple(a.line() for a in applied),
            analysis=analysis, pruned_at=now if pruned else previous.pruned_at, retry_in=None)

    def _save(self, previous: ControllerStatus, status: ControllerStatus, now: float) -> None:
        """Persist the status; a change of an error condition is one event (and one log
        line), never one per pass."""
        self._status = status
        for kind in st.ERROR_CONDITIONS:
            before, after = previous.condition(kind), status.condition(kind)
            if after is None:
                continue
            if after.status == st.FALSE and (before is None or before.status != st.FALSE
                                             or before.message != after.message):
                log.warning("controller: %s is False: %s", kind, after.message)
                self._record_safely(EventKind.CONTROLLER_ERROR, f"{kind}: {after.message}",
                                    now, {"condition": after.as_dict()})
            elif after.status == st.TRUE and before is not None and before.status == st.FALSE:
                log.info("controller: %s is True again", kind)
                self._record_safely(EventKind.CONTROLLER_RECOVERED,
                                    f"{kind}: {after.message}", now,
                                    {"condition": after.as_dict(), "was": before.as_dict(),
                                     "seconds": round(now - before.since, 3)})
        self.project.store.save_status(self.project.model_name, status.as_dict(), ts=now,
                                       owner=self.owner)

    # running -----------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float | None = None) -> None:
        """Pass after pass until `stop` is set; a failed pass backs off, never stops it."""
        pause = interval or self.project.policy.monitoring.interval_seconds
        heartbeat = threading.Thread(target=self._hold_lease, args=(stop,), daemon=True,
                                     name="tether-controller-lease")
        heartbeat.start()
        try:
            while not stop.is_set():
                delay = pause
                try:
                    self.tick()
                    self._failures = 0
                except Exception as exc:  # a pass must never end the loop
                    self._failures += 1
                    delay = backoff(pause, self._failures)
                    self._failed(exc, delay)
                stop.wait(delay)
        finally:
            with contextlib.suppress(TetherError):
                self.project.store.release_lock(self.lock_name, self.owner)

    def once(self, timeout: float | None = None) -> Pass:
        """One pass, then wait for a retrain it started; the lease is released after."""
        try:
            result = self.tick()
            self.worker.join(timeout)
            return result
        finally:
            with contextlib.suppress(TetherError):
                self.project.store.release_lock(self.lock_name, self.owner)

    def _failed(self, exc: Exception, retry_in: float) -> None:
        message = str(exc) if isinstance(exc, TetherError) else \
            f"unexpected {type(exc).__name__}: {exc}"
        now = self.clock()
        previous = self._status or ControllerStatus.empty(self.project.model_name,
                                                          self.owner, now)
        status = failed_pass(previous, message, now, retry_in)
        before = previous.condition(st.HEALTHY)
        changed = before is None or before.status != st.FALSE or before.message != message
        if changed and not isinstance(exc, TetherError):
            log.error("controller pass failed", exc_info=exc)
        try:
            self._save(previous, status, now)  # logs and records the change, once
        except TetherError as error:  # the store itself is down: only the log can say it
            self._status = status
            if changed:
                log.warning("controller pass failed (next in %.0f s): %s; the status cannot "
                            "be saved: %s", retry_in, message, error)

    def _record_safely(self, kind: EventKind, reason: str, now: float,
                       data: dict[str, object]) -> None:
        try:
            self.project.record(kind, reason, data=data, ts=now)
        except TetherError:
            log.exception("cannot write event %s", kind)

    @asynccontextmanager
    async def running(self, interval: float | None = None) -> AsyncIterator[None]:
        """The loop in a thread for the duration of the block (an app lifespan)."""
        stop = threading.Event()
        worker = threading.Thread(target=self.run, args=(stop, interval),
                                  name="tether-controller", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(worker.join, 60)
            # a retrain still running gets the same grace; after it the process may end
            await asyncio.to_thread(self.worker.join, 60)

    def _hold_lease(self, stop: threading.Event) -> None:
        """Renew the lease between passes; never take it from another."""
        while not stop.wait(self.lock_ttl / 3):
            try:
                if self.project.store.lock_owner(self.lock_name) == self.owner:
                    self.project.store.acquire_lock(self.lock_name, self.owner, self.lock_ttl)
            except TetherError as exc:
                log.warning("lease renewal failed: %s", exc)
