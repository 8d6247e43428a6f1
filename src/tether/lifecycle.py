"""The manual lifecycle: promote, roll back, read the state and the history.

Each step writes the registry first (the truth) and then the event log, with the
numbers that decided it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.errors import TetherError
from tether.gate import run_gate
from tether.project import Project
from tether.registry import RegistryState, State
from tether.store import FINE_TOTALS_DAYS, Event, PruneResult
from tether.training import Progress, TrainResult, retrain
from tether.verdict import Assessment

__all__ = ["Status", "gate", "history", "promote", "prune", "rollback", "status", "train"]


def train(project: Project, reason: str = "manual",
          progress: Progress | None = None) -> TrainResult:
    """Retrain, recording a failure in the event log before re-raising it."""
    try:
        return retrain(project, reason=reason, progress=progress)
    except TetherError as exc:
        project.record("retrain_failed", str(exc), data={"cause": reason})
        raise


def gate(project: Project, version: int | None = None) -> Assessment:
    return run_gate(project, version)


def promote(project: Project, version: int | None = None, reason: str = "manual promote") -> int:
    """Make `version` (default: the latest candidate that passed its gate) the champion."""
    registry = project.registry
    number = version if version is not None else _latest_passed(project)
    old = registry.promote(number, reason)
    info = registry.version(number)
    project.record("promoted", reason, version=number, data={"previous": old, "gate": info.gate})
    return number


def _latest_passed(project: Project) -> int:
    state = project.registry.state()
    passed = [v.version for v in state.versions
              if v.state == State.CANDIDATE and v.gate and v.gate.get("passed")]
    if not passed:
        from tether.errors import VersionNotFound

        raise VersionNotFound("no candidate has passed its gate; run `tether gate`, or pass "
                              "--version N to promote a version by hand")
    return max(passed)


def rollback(project: Project, reason: str, to: int | None = None,
             numbers: dict[str, Any] | None = None,
             on_switch: Callable[[int], None] | None = None,
             current: RegistryState | None = None) -> tuple[int, int]:
    """Put `to` (default: alias previous) back as champion, recording the numbers why."""
    bad, target = project.registry.rollback(reason, to=to, on_switch=on_switch,
                                            current=current)
    project.record("rolled_back", reason, version=bad, data={"to": target, **(numbers or {})})
    return bad, target


@dataclass(frozen=True)
class Status:
    registry: RegistryState
    repaired: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.registry.as_dict(), "repaired": self.repaired}


def status(project: Project, repair: bool = False) -> Status:
    fixed = project.registry.repair() if repair else []
    if fixed:
        project.record("repaired", "; ".join(fixed), data={"fixes": fixed})
    return Status(registry=project.registry.state(), repaired=fixed)


def history(project: Project, limit: int | None = None) -> list[Event]:
    return project.store.events(project.model_name, limit=limit)


def prune(project: Project, *, predictions_days: float | None = None,
          totals_days: float | None = None, now: float | None = None) -> PruneResult:
    """Apply the retention policy (or the given days) to the store; a prune that deleted
    something is recorded with its counts."""
    retention = project.policy.retention
    predictions_days = retention.predictions_days if predictions_days is None \
        else predictions_days
    totals_days = retention.totals_days if totals_days is None else totals_days
    now = time.time() if now is None else now
    day = 86400.0
    result = project.store.prune(
        project.model_name,
        predictions_before=None if predictions_days is None else now - predictions_days * day,
        totals_before=None if totals_days is None else now - totals_days * day,
        # only windows of a few hours read the 5-second totals
        fine_totals_before=now - FINE_TOTALS_DAYS * day)
    parts = []
    if result.batches:
        parts.append(f"{result.predictions} predictions and {result.labels} labels older "
                     f"than {predictions_days:g} days")
    if result.totals:
        minute = "kept" if totals_days is None else f"older than {totals_days:g} days"
        parts.append(f"{result.totals} kept totals (per 5 s: older than "
                     f"{FINE_TOTALS_DAYS:g} days; per minute: {minute})")
    if parts:
        project.record("pruned", "deleted " + " and ".join(parts), data=result.as_dict())
    return result
