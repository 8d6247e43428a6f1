"""Threshold triggers from the champion's live picture: drift, metric drop, change.

Each condition fires on its rising edge (drift after K consecutive checks), so a model
that stays degraded asks for one retrain, not one per pass; the cool-down and the
budget in `triggers.admit` bound the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tether.config import Policy
from tether.control.triggers import Trigger, TriggerKind
from tether.monitoring.monitor import Snapshot
from tether.registry import RegistryState
from tether.scoring import metric

__all__ = ["Watcher"]


@dataclass
class Watcher:
    """Turns snapshots of the champion into triggers; call it once per controller pass."""

    policy: Policy
    snapshot: Callable[[int], Snapshot]
    baseline: Callable[[RegistryState], float | None]
    _drift_streak: int = 0
    _firing: dict[str, bool] = field(default_factory=dict)
    last: Snapshot | None = None

    def __call__(self, state: RegistryState, now: float) -> list[Trigger]:
        if state.champion is None or state.rollout is not None:
            return []
        snap = self.snapshot(state.champion)
        self.last = snap
        found: list[Trigger] = []
        found += self._drift(snap, now)
        found += self._metric(snap, self.baseline(state), now)
        found += self._change(snap, now)
        return found

    def _edge(self, name: str, active: bool) -> bool:
        fired = active and not self._firing.get(name, False)
        self._firing[name] = active
        return fired

    def _drift(self, snap: Snapshot, now: float) -> list[Trigger]:
        threshold = self.policy.monitoring.drift_share_threshold
        share = snap.drift.share_drifted if snap.drift is not None else None
        self._drift_streak = self._drift_streak + 1 if share is not None and \
            share > threshold else 0
        needed = self.policy.triggers.drift_consecutive
        if self._edge("drift", self._drift_streak >= needed) and share is not None:
            return [Trigger(TriggerKind.DRIFT,
                            f"drift share {share:.2f} > {threshold:.2f} for {needed} "
                            "consecutive checks", data={"share_drifted": share}, ts=now)]
        return []

    def _metric(self, snap: Snapshot, baseline: float | None, now: float) -> list[Trigger]:
        triggers = self.policy.triggers
        chosen = metric(self.policy.model.task, self.policy.metric.primary)
        primary = chosen.name
        estimate = snap.live.get(primary) if snap.live else None
        enough = snap.n_labels >= self.policy.monitoring.min_labels
        # Judge by the interval's optimistic end: a drop must be clear on these labels,
        # not noise of a small window.
        best = None if estimate is None else (estimate.upper if chosen.bigger_is_better
                                              else estimate.lower)
        if estimate is None or estimate.value is None or best is None or not enough:
            self._edge("metric", False)
            return []
        shown = (f"live {primary} {chosen.format(estimate.value)} (CI "
                 f"{chosen.format(estimate.lower)}-{chosen.format(estimate.upper)}, "
                 f"{estimate.n} labels)")
        reasons = []
        if triggers.metric_floor is not None and chosen.worse(best, triggers.metric_floor):
            reasons.append(f"{shown} worse than {chosen.limit_name} "
                           f"{chosen.format(triggers.metric_floor)}")
        if triggers.metric_drop is not None and baseline is not None and \
                chosen.improvement(best, baseline) < -triggers.metric_drop:
            reasons.append(f"{shown} is more than metric_drop "
                           f"{chosen.format(triggers.metric_drop)} worse than the champion's "
                           f"baseline {chosen.format(baseline)}")
        if self._edge("metric", bool(reasons)):
            return [Trigger(TriggerKind.METRIC, "; ".join(reasons),
                            data={"metric": primary, "direction": chosen.direction.value,
                                  "value": estimate.value, "baseline": baseline,
                                  "labels": snap.n_labels}, ts=now)]
        return []

    def _change(self, snap: Snapshot, now: float) -> list[Trigger]:
        if not self.policy.triggers.on_change_detected:
            return []
        fired = [stream for stream, detected in sorted(snap.change.items()) if detected]
        if self._edge("change", bool(fired)):
            return [Trigger(TriggerKind.CHANGE, f"change detected on the {', '.join(fired)} "
                            "stream", data={"streams": fired}, ts=now)]
        return []


def gate_baseline(state: RegistryState, primary: str) -> float | None:
    """The champion's primary metric as its gate measured it."""
    info = state.version(state.champion) if state.champion is not None else None
    if info is None or not info.gate:
        return None
    value = info.gate.get("scores", {}).get("challenger", {}).get(primary)
    return float(value) if value is not None else None
