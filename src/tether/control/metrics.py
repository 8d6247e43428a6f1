"""The controller's Prometheus metrics (names from `tether.metric_names`), read from the
typed actions a pass applied and the status it persisted."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from tether.control.actions import Dispatch, Fire, Promote, RollBack, StartRetrain
from tether.control.apply import Applied
from tether.control.status import STATUSES, ControllerStatus
from tether.control.triggers import Trigger
from tether.metric_names import METRICS
from tether.registry import RegistryState

__all__ = ["ControllerMetrics"]


def _help(name: str) -> str:
    return METRICS[name].help


class ControllerMetrics:
    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.model = model
        target = registry if registry is not None else REGISTRY
        self.rollout_step = Gauge("tether_rollout_step", _help("tether_rollout_step"),
                                  ["model", "version"], registry=target)
        self.retrains = Counter("tether_retrains", _help("tether_retrains_total"),
                                ["model", "trigger"], registry=target)
        self.promotions = Counter("tether_promotions", _help("tether_promotions_total"),
                                  ["model"], registry=target)
        self.rollbacks = Counter("tether_rollbacks", _help("tether_rollbacks_total"),
                                 ["model"], registry=target)
        self.triggers = Counter("tether_triggers", _help("tether_triggers_total"),
                                ["model", "kind"], registry=target)
        self.conditions = Gauge("tether_controller_condition",
                                _help("tether_controller_condition"),
                                ["model", "condition", "status"], registry=target)
        self._step_versions: set[str] = set()
        for counter in (self.promotions, self.rollbacks):
            counter.labels(model)

    def received(self, trigger: Trigger) -> None:
        self.triggers.labels(self.model, trigger.kind.value).inc()

    def observe(self, state: RegistryState, applied: Sequence[Applied],
                status: ControllerStatus | None) -> None:
        """After a pass: the rollout as the registry has it, what the pass did, its status."""
        for result in applied:
            if not result.ok:
                continue
            match result.action:
                case Promote():
                    self.promotions.labels(self.model).inc()
                case RollBack():
                    self.rollbacks.labels(self.model).inc()
                case StartRetrain(trigger=trigger) | Dispatch(trigger=trigger):
                    self.retrains.labels(self.model, trigger.kind.value).inc()
                case Fire(trigger=trigger):
                    self.received(trigger)
        self._rollout(state)
        if status is not None:
            for condition in status.conditions:
                for value in STATUSES:
                    self.conditions.labels(self.model, condition.type, value).set(
                        float(condition.status == value))

    def _rollout(self, state: RegistryState) -> None:
        for version in self._step_versions:
            self.rollout_step.remove(self.model, version)
        self._step_versions.clear()
        if state.rollout is not None:
            version = str(state.rollout.version)
            self.rollout_step.labels(self.model, version).set(state.rollout.step)
            self._step_versions.add(version)
