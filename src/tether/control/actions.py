"""What the controller may do: a closed set of typed actions, each with its reason and
the numbers behind it.

`plan` returns them, `apply` performs them, the metrics count them and `tether
controller --once` prints them (`describe()`, one line each). Nothing parses their text.

```
Repair         make registry tags agree with aliases after an interrupted write
RollBack       champion -> previous (a failed probation, or a rollback trigger)
AbortRollout   take all traffic back from the challenger and reject it
Fire           a watcher or the schedule asks for a retrain (recorded as a trigger)
StartRetrain   hand a retrain to the worker (it trains and gates outside the pass)
Dispatch       hand a retrain to CI (GitHub repository_dispatch)
SkipTrigger    a trigger that may not act now, and why
StartRollout   route a copy (shadow) or a share (canary) of traffic to a challenger
SetStep        move the rollout to its next step
Promote        make a version champion (the first one, or after the last canary step)
PassProbation  a new champion measured as good as the previous one
Wait           nothing to do until more data arrives, and what for
Prune          apply the retention policy to the store
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.control.triggers import Trigger, TriggerAction
from tether.registry import RolloutSpec

__all__ = [
    "REGISTRY_CHANGES",
    "AbortRollout",
    "Action",
    "Dispatch",
    "Fire",
    "PassProbation",
    "Promote",
    "Prune",
    "Repair",
    "RollBack",
    "SetStep",
    "SkipTrigger",
    "StartRetrain",
    "StartRollout",
    "Wait",
    "decided",
    "describe_rollout",
    "spec_dict",
]


def describe_rollout(spec: RolloutSpec) -> str:
    """A rollout in words, as the registry's reason and the event log keep it.

    >>> describe_rollout(RolloutSpec(version=3, mode="canary", weight=0.25, step=1))
    'canary step 1: 25% of traffic to version 3'
    """
    if spec.mode == "shadow":
        return f"shadow: version {spec.version} scores a copy of live traffic"
    return f"canary step {spec.step}: {spec.weight:.0%} of traffic to version {spec.version}"


def spec_dict(spec: RolloutSpec) -> dict[str, Any]:
    """The rollout as the event log keeps it."""
    return {"version": spec.version, "mode": spec.mode, "weight": spec.weight,
            "step": spec.step, "started_at": spec.started_at}


@dataclass(frozen=True)
class Repair:
    problems: tuple[str, ...]

    def describe(self) -> str:
        return "repair the registry: " + "; ".join(self.problems)


@dataclass(frozen=True)
class RollBack:
    version: int  # the champion taken out
    target: int  # the version put back
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    trigger: Trigger | None = None  # None: probation decided it
    also: tuple[Trigger, ...] = ()  # more triggers asking the same, folded into this one

    def describe(self) -> str:
        return f"roll back version {self.version} to {self.target}: {self.reason}"


@dataclass(frozen=True)
class AbortRollout:
    rollout: RolloutSpec
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    reject: bool = True  # False: the challenger goes back to candidate (nothing judged it)
    trigger: Trigger | None = None
    also: tuple[Trigger, ...] = ()

    @property
    def version(self) -> int:
        return self.rollout.version

    def describe(self) -> str:
        return f"abort the rollout of version {self.version}: {self.reason}"


@dataclass(frozen=True)
class Fire:
    trigger: Trigger

    def describe(self) -> str:
        return f"{self.trigger.kind.value} trigger: {self.trigger.reason}"


@dataclass(frozen=True)
class StartRetrain:
    trigger: Trigger
    also: tuple[Trigger, ...] = ()

    def describe(self) -> str:
        return f"retrain ({self.trigger.kind.value}: {self.trigger.reason})"


@dataclass(frozen=True)
class Dispatch:
    trigger: Trigger
    repo: str
    also: tuple[Trigger, ...] = ()
    event_type: str = "model-performance-drop"

    def describe(self) -> str:
        return f"dispatch {self.event_type} to {self.repo}"


@dataclass(frozen=True)
class SkipTrigger:
    trigger: Trigger
    reason: str
    also: tuple[Trigger, ...] = ()

    def describe(self) -> str:
        what = "rollback" if self.trigger.action is TriggerAction.ROLLBACK \
            else self.trigger.kind.value
        return f"skip {what}: {self.reason}"


@dataclass(frozen=True)
class StartRollout:
    rollout: RolloutSpec
    champion: int

    @property
    def version(self) -> int:
        return self.rollout.version

    @property
    def reason(self) -> str:
        return describe_rollout(self.rollout)

    def describe(self) -> str:
        return f"start the rollout: {self.reason}"


@dataclass(frozen=True)
class SetStep:
    current: RolloutSpec
    following: RolloutSpec
    reason: str  # the analysis that passed the current step
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.current.version

    def describe(self) -> str:
        return f"step passed ({self.reason}); now {describe_rollout(self.following)}"


@dataclass(frozen=True)
class Promote:
    version: int
    reason: str
    rollout: RolloutSpec | None = None  # the last step it passed; None: the first champion
    numbers: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"promote version {self.version}: {self.reason}"


@dataclass(frozen=True)
class PassProbation:
    version: int
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"probation of version {self.version} passed: {self.reason}"


@dataclass(frozen=True)
class Wait:
    subject: str  # the condition it holds open: Rollout or Probation
    why: str  # a condition reason: WaitingForPredictions, WaitingForLabels, Observing
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"wait ({self.subject.lower()}): {self.reason}"


@dataclass(frozen=True)
class Prune:
    now: float

    def describe(self) -> str:
        return "apply the retention policy"


Action = (Repair | RollBack | AbortRollout | Fire | StartRetrain | Dispatch | SkipTrigger
          | StartRollout | SetStep | Promote | PassProbation | Wait | Prune)

# actions that write the registry: servers are told to reload once a pass applied one
REGISTRY_CHANGES = (Repair, RollBack, AbortRollout, StartRollout, SetStep, Promote)


def decided(action: Action) -> tuple[Trigger, ...]:
    """The triggers an action answers (the one it acts on and those folded into it)."""
    trigger = getattr(action, "trigger", None)
    if trigger is None or isinstance(action, Fire):
        return ()
    return (trigger, *getattr(action, "also", ()))
