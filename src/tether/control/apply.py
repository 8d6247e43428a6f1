"""Apply: perform a pass's actions, in order, writing the registry first (the truth) and
then the event log, with the numbers that decided each one.

Every registry write goes through `tether.lifecycle`, as a transaction under the
registry lease that checks the routing is still the one `observe` saw (`expected`). When
it is not (a person, CI or another process wrote first), nothing is written: the world
moved, and the next pass observes it and plans again. That is no fault; the triggers the
action answered wait for that pass.

An action that fails stops the pass (the ones after it were planned on the state it was
to make); the next pass observes what is and plans again. Two failures are expected
outcomes rather than faults and are recorded as such: a rollback with nothing to roll
back to (`rollback_skipped`) and GitHub refusing a dispatch (`dispatch_failed`). After
each registry write the servers are told to reload (`push`); an embedded server swaps to
a rolled-back version the moment the champion alias moves (`switch`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tether import lifecycle
from tether.control.actions import (
    REGISTRY_CHANGES,
    AbortRollout,
    Action,
    Dispatch,
    Fire,
    PassProbation,
    Promote,
    Prune,
    Repair,
    RollBack,
    SetStep,
    SkipTrigger,
    StartRetrain,
    StartRollout,
    Wait,
    describe_rollout,
    spec_dict,
)
from tether.control.github import DEFAULT_API_URL, dispatch
from tether.control.observe import Observed
from tether.control.triggers import Trigger, TriggerAction, TriggerKind
from tether.control.worker import RetrainWorker
from tether.errors import RegistryConflict, TetherError
from tether.events import EventKind
from tether.project import Project
from tether.registry import State

__all__ = ["Applied", "Applier"]

log = logging.getLogger("tether.controller")


@dataclass(frozen=True)
class Applied:
    """One action and what became of it."""

    action: Action
    error: str | None = None
    detail: str = ""
    moved: str | None = None  # not written: the registry changed since it was observed

    @property
    def ok(self) -> bool:
        return self.error is None and self.moved is None

    def line(self) -> str:
        text = self.action.describe()
        if self.detail:
            text += f" ({self.detail})"
        if self.moved is not None:
            return f"{text}: not done, the registry moved ({self.moved}); the next pass " \
                   "plans again"
        return text if self.ok else f"{text}: FAILED: {self.error}"


class _Expected(TetherError):
    """A failure that is an outcome: recorded, and the pass goes on."""


class Applier:
    """Performs actions for one model; one per controller."""

    def __init__(self, project: Project, worker: RetrainWorker, *,
                 push: Callable[[], None] | None = None,
                 switch: Callable[[int], None] | None = None) -> None:
        self.project = project
        self.worker = worker
        self.push = push
        self.switch = switch

    def apply(self, actions: Sequence[Action], observed: Observed, now: float) -> list[Applied]:
        results: list[Applied] = []
        for action in actions:
            try:
                detail = self._one(action, observed, now)
            except RegistryConflict as exc:
                log.info("controller: %s not done: %s", action.describe(), exc)
                results.append(Applied(action, moved=str(exc)))
                break
            except _Expected as exc:
                results.append(Applied(action, error=str(exc)))
                continue
            except TetherError as exc:
                log.warning("controller: %s failed: %s", action.describe(), exc)
                results.append(Applied(action, error=str(exc)))
                break
            results.append(Applied(action, detail=detail))
            if isinstance(action, REGISTRY_CHANGES):
                self._push(now)
        return results

    # one action --------------------------------------------------------------------

    def _one(self, action: Action, observed: Observed, now: float) -> str:
        project = self.project
        match action:
            case Repair():
                return "; ".join(lifecycle.repair(project, expected=observed.registry))
            case RollBack():
                return self._rollback(action, observed, now)
            case AbortRollout(rollout=spec, reason=reason, numbers=numbers):
                lifecycle.stop_rollout(
                    project, State.REJECTED if action.reject else State.CANDIDATE,
                    f"{spec.mode} step {spec.step}: {reason}", expected=observed.registry,
                    message=reason,
                    data={"rollout": spec_dict(spec), **numbers, "reason": reason,
                          **_asked_by(action.trigger, action.also)})
                return ""
            case Fire(trigger=trigger):
                kind = (EventKind.SCHEDULE_FIRED if trigger.kind is TriggerKind.SCHEDULE
                        else EventKind.TRIGGER)
                self._record(kind, trigger.reason, now, data=trigger.as_dict())
                return ""
            case StartRetrain(trigger=trigger, also=also):
                self._record(EventKind.RETRAIN_STARTED,
                             f"{trigger.kind.value}: {trigger.reason}", now,
                             data={**trigger.as_dict(), **_folded(also)})
                self.worker.start(trigger)
                return ""
            case Dispatch():
                return self._dispatch(action, now)
            case SkipTrigger(trigger=trigger, reason=reason, also=also):
                kind = (EventKind.ROLLBACK_SKIPPED if trigger.action is TriggerAction.ROLLBACK
                        else EventKind.TRIGGER_SKIPPED)
                self._record(kind, reason, now, data={**trigger.as_dict(), **_folded(also)})
                return ""
            case StartRollout(rollout=spec):
                lifecycle.start_rollout(project, spec, action.reason,
                                        expected=observed.registry)
                return ""
            case SetStep(following=following, reason=reason, numbers=numbers):
                lifecycle.update_rollout(project, following, describe_rollout(following),
                                         expected=observed.registry, message=reason,
                                         data={**numbers,
                                               "next_rollout": spec_dict(following)})
                return ""
            case Promote(version=version, reason=reason, rollout=spec, numbers=numbers):
                with lifecycle.transaction(project, f"promoting version {version}",
                                           observed.registry):
                    if spec is not None:  # the last canary step passed: its analysis first
                        self._record(EventKind.ROLLOUT_STEP, numbers.get("message", reason),
                                     now, version=version, data=numbers)
                    lifecycle.promote(project, version, reason, expected=observed.registry)
                return ""
            case PassProbation(version=version, reason=reason, numbers=numbers):
                self._record(EventKind.PROBATION_PASSED, reason, now, version=version,
                             data=numbers)
                return ""
            case Wait():
                return ""
            case Prune(now=cut):
                result = lifecycle.prune(project, now=cut)
                if not (result.batches or result.totals):
                    return "nothing to delete"
                return (f"deleted {result.predictions} predictions and {result.totals} kept "
                        "totals")
        raise AssertionError(f"unknown action {action!r}")  # the union is closed

    def _rollback(self, action: RollBack, observed: Observed, now: float) -> str:
        numbers = {**action.numbers, **_asked_by(action.trigger, action.also)}
        try:
            lifecycle.rollback(self.project, action.reason, to=action.target, numbers=numbers,
                               on_switch=self._switch, expected=observed.registry)
        except RegistryConflict:
            raise
        except TetherError as exc:
            self._record(EventKind.ROLLBACK_SKIPPED, str(exc), now, data=numbers)
            raise _Expected(str(exc)) from exc
        return ""

    def _dispatch(self, action: Dispatch, now: float) -> str:
        """Hand the retrain to CI: GitHub's repository_dispatch, as the workflow in
        deploy/github/workflows/ expects it; it counts against the cool-down and budget
        like a local retrain."""
        trigger = action.trigger
        data = {**trigger.as_dict(), **_folded(action.also)}
        payload = {"model_name": self.project.model_name,
                   "trigger_reason": f"{trigger.kind.value}: {trigger.reason}"}
        try:
            dispatch(action.repo, os.environ.get("TETHER_GITHUB_TOKEN"), action.event_type,
                     payload, api_url=os.environ.get("TETHER_GITHUB_API_URL", DEFAULT_API_URL))
        except TetherError as exc:
            self._record(EventKind.DISPATCH_FAILED, str(exc), now, data=data)
            raise _Expected(str(exc)) from exc
        self._record(EventKind.RETRAIN_STARTED, f"dispatched to {action.repo}: "
                                                f"{trigger.reason}", now,
                     data={**data, "github_repo": action.repo})
        return ""

    # plumbing ----------------------------------------------------------------------

    def _record(self, kind: EventKind, reason: str, now: float, *, version: int | None = None,
                data: dict[str, Any] | None = None) -> None:
        self.project.record(kind, reason, version=version, data=data, ts=now)

    def _switch(self, version: int) -> None:
        if self.switch is None:
            return
        try:
            self.switch(version)
        except Exception as exc:  # the push after the registry writes still reloads
            log.warning("fast switch to version %s failed: %s", version, exc)

    def _push(self, now: float) -> None:
        if self.push is None:
            return
        try:
            self.push()
        except Exception as exc:  # servers also poll; a failed push only costs latency
            log.warning("push to servers failed: %s", exc)
            try:
                self._record(EventKind.PUSH_FAILED, f"{type(exc).__name__}: {exc}", now)
            except TetherError:
                log.exception("cannot record the failed push")


def _folded(also: Sequence[Trigger]) -> dict[str, Any]:
    return {"also": [t.as_dict() for t in also]} if also else {}


def _asked_by(trigger: Trigger | None, also: Sequence[Trigger]) -> dict[str, Any]:
    if trigger is None:
        return {}
    return {"trigger": trigger.as_dict(), **_folded(also)}
