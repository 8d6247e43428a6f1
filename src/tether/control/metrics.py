"""The controller's Prometheus metrics (names from `tether.metric_names`)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

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
        self._step_versions: set[str] = set()
        for counter in (self.promotions, self.rollbacks):
            counter.labels(model)

    def observe_state(self, state: RegistryState) -> None:
        for version in self._step_versions:
            self.rollout_step.remove(self.model, version)
        self._step_versions.clear()
        if state.rollout is not None:
            version = str(state.rollout.version)
            self.rollout_step.labels(self.model, version).set(state.rollout.step)
            self._step_versions.add(version)

    def observe_actions(self, actions: list[str]) -> None:
        for line in actions:
            if line.startswith("promoted version"):
                self.promotions.labels(self.model).inc()
            elif line.startswith("rolled back version"):
                self.rollbacks.labels(self.model).inc()
