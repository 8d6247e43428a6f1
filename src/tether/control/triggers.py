"""Why a retrain (or a rollback) was asked for, and whether it may happen now.

Every trigger, whatever its source, goes through `admit`: a de-duplication window, a
cool-down after the last retrain and a daily budget. Admission is computed from the
event log, so a restarted controller applies the same limits.

>>> from tether.config import TriggerPolicy
>>> policy = TriggerPolicy(cooldown_seconds=600, max_retrains_per_day=2)
>>> admit(Trigger(TriggerKind.DRIFT, "drift share 0.6"), [], policy, now=10_000.0)
(True, 'admitted')
>>> admit(Trigger(TriggerKind.DRIFT, "drift share 0.6"), [9_800.0], policy, now=10_000.0)
(False, 'cool-down: last retrain 200 s ago < cooldown_seconds 600')
>>> admit(Trigger(TriggerKind.MANUAL, "by hand"), [9_800.0], policy, now=10_000.0)
(True, 'admitted')
>>> admit(Trigger(TriggerKind.SCHEDULE, "cron"), [1_000.0, 2_000.0], policy, now=10_000.0)
(False, 'budget: 2 retrains in the last 24 h >= max_retrains_per_day 2')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from croniter import croniter

from tether.config import TriggerPolicy

__all__ = ["Trigger", "TriggerAction", "TriggerKind", "admit", "schedule_due"]

DAY_SECONDS = 86_400.0


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    DRIFT = "drift"
    METRIC = "metric"
    CHANGE = "change_detected"
    ALERTMANAGER = "alertmanager"
    GITHUB = "github"
    MANUAL = "manual"


class TriggerAction(StrEnum):
    RETRAIN = "retrain"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    reason: str
    action: TriggerAction = TriggerAction.RETRAIN
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "action": self.action.value, "reason": self.reason,
                "data": self.data, "ts": self.ts}


def admit(trigger: Trigger, retrains: Sequence[float], policy: TriggerPolicy,
          now: float) -> tuple[bool, str]:
    """May this trigger start a retrain now? `retrains` are past retrain start times.

    A manual trigger skips the cool-down (a person asked) but not the budget.
    """
    if trigger.action is TriggerAction.ROLLBACK:
        return True, "admitted"
    recent = [ts for ts in retrains if now - ts < DAY_SECONDS]
    if len(recent) >= policy.max_retrains_per_day:
        return False, (f"budget: {len(recent)} retrains in the last 24 h >= "
                       f"max_retrains_per_day {policy.max_retrains_per_day}")
    if trigger.kind is not TriggerKind.MANUAL and recent:
        since = now - max(recent)
        if since < policy.cooldown_seconds:
            return False, (f"cool-down: last retrain {since:.0f} s ago < cooldown_seconds "
                           f"{policy.cooldown_seconds:.0f}")
    return True, "admitted"


def schedule_due(cron: str, last_run: float | None, now: float) -> bool:
    """Has a cron tick passed since `last_run` (or in the last minute, on a first run)?

    >>> schedule_due("0 3 * * *", last_run=0.0, now=4 * 3600.0)
    True
    >>> schedule_due("0 3 * * *", last_run=3.5 * 3600, now=4 * 3600.0)
    False
    """
    start = last_run if last_run is not None else now - 60.0
    upcoming = croniter(cron, start).get_next(float)
    return bool(upcoming <= now)
