"""The monitoring gauges, as a prometheus_client custom Collector.

`MonitoringCollector(monitor, versions)` computes a snapshot per served (version, route)
at most once per `monitoring.interval_seconds` (the monitor's clock), so a scrape every
second costs a dictionary lookup. A server runs `run(stop)` in a thread of its own and
builds the collector with `background=True`: snapshots are then computed only there, and
a scrape never holds up the event loop that answers predictions. Names and labels come
from `tether.metric_names`. Metrics with no value (not enough data) are left out rather
than exported as 0.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from typing import TypeGuard

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.errors import TetherError
from tether.metric_names import METRICS
from tether.monitoring.monitor import STREAMS, Monitor, Snapshot

__all__ = ["MonitoringCollector"]

log = logging.getLogger("tether.monitoring")

RETRY_SECONDS = 60.0  # after a version's snapshot failed

NAMES = ("tether_live_metric", "tether_live_metric_ci_lower", "tether_live_metric_ci_upper",
         "tether_live_metric_samples", "tether_label_coverage_ratio", "tether_estimated_metric",
         "tether_feature_drift_score", "tether_drift_share_ratio",
         "tether_prediction_drift_score", "tether_change_detected")


def _family(name: str) -> GaugeMetricFamily:
    spec = METRICS[name]
    return GaugeMetricFamily(name, spec.help, labels=list(spec.labels))


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


class MonitoringCollector(Collector):
    """Exports the snapshots of the versions `versions()` lists, as (version, route)."""

    def __init__(self, monitor: Monitor, versions: Callable[[], list[tuple[int, str]]],
                 ttl_seconds: float | None = None, *, background: bool = False) -> None:
        self.monitor = monitor
        self.versions = versions
        self.ttl_seconds = (monitor.project.policy.monitoring.interval_seconds
                            if ttl_seconds is None else ttl_seconds)
        self.background = background
        self._failed: dict[tuple[int, str], float] = {}
        self._cache: dict[tuple[int, str], tuple[float, Snapshot]] = {}
        self._lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        # Registering must not compute snapshots.
        for name in NAMES:
            yield _family(name)

    def snapshots(self, compute: bool = True) -> list[Snapshot]:
        """One fresh-enough snapshot per served (version, route); failures are skipped.
        Without `compute`, the cached ones, however old: nothing is computed, and the
        lock is never held while a snapshot is."""
        now = self.monitor.clock()
        served = list(dict.fromkeys(self.versions()))
        with self._lock:
            self._cache = {key: self._cache[key] for key in served if key in self._cache}
            cache = dict(self._cache)
        result = []
        for key in served:
            cached = cache.get(key)
            if compute and (cached is None or now - cached[0] >= self.ttl_seconds) \
                    and now >= self._failed.get(key, now):
                try:
                    snapshot = self.monitor.snapshot(key[0], key[1])
                except TetherError as exc:
                    # e.g. a version without a training profile: try again in a while,
                    # not at every refresh
                    log.info("monitoring: no snapshot of version %s on %s: %s", *key, exc)
                    self._failed[key] = now + max(self.ttl_seconds, RETRY_SECONDS)
                    continue
                self._failed.pop(key, None)
                cached = (now, snapshot)
                with self._lock:
                    self._cache[key] = cached
            if cached is not None:
                result.append(cached[1])
        return result

    def run(self, stop: threading.Event) -> None:
        """Keep the snapshots fresh until `stop` is set (a server's monitoring thread)."""
        while True:
            try:
                self.snapshots()
            except Exception:  # the next round tries again; scrapes keep the last values
                log.exception("monitoring: computing snapshots failed")
            if stop.wait(self.ttl_seconds):
                return

    def collect(self) -> Iterator[Metric]:
        families = {name: _family(name) for name in NAMES}
        model = self.monitor.project.model_name
        drift_done: set[int] = set()
        for snap in self.snapshots(compute=not self.background):
            labels = [model, str(snap.version), snap.route or "all"]
            for metric, estimate in snap.live.items():
                if _finite(estimate.value):
                    families["tether_live_metric"].add_metric([*labels, metric], estimate.value)
                if _finite(estimate.lower):
                    families["tether_live_metric_ci_lower"].add_metric([*labels, metric],
                                                                       estimate.lower)
                if _finite(estimate.upper):
                    families["tether_live_metric_ci_upper"].add_metric([*labels, metric],
                                                                       estimate.upper)
            families["tether_live_metric_samples"].add_metric(labels, snap.n_labels)
            if _finite(snap.label_coverage):
                families["tether_label_coverage_ratio"].add_metric(labels,
                                                                   snap.label_coverage or 0.0)
            for metric, value in snap.estimated.items():
                if _finite(value):
                    families["tether_estimated_metric"].add_metric([*labels, metric], value)
            if snap.version not in drift_done:
                # Drift is per version: the first route listed for a version speaks for it.
                drift_done.add(snap.version)
                version_labels = [model, str(snap.version)]
                for stream in STREAMS:
                    families["tether_change_detected"].add_metric(
                        [*version_labels, stream], float(snap.change.get(stream, False)))
                drift = snap.drift
                if drift is not None and drift.enough_data:
                    for feature in drift.features:
                        if _finite(feature.score):
                            families["tether_feature_drift_score"].add_metric(
                                [*version_labels, feature.name, feature.method],
                                feature.score)
                        if _finite(feature.missing_share) and \
                                _finite(feature.missing_reference):
                            # method "missing": how far the share of missing values moved
                            families["tether_feature_drift_score"].add_metric(
                                [*version_labels, feature.name, "missing"],
                                abs(feature.missing_share - feature.missing_reference))
                    families["tether_drift_share_ratio"].add_metric(
                        version_labels, float(drift.share_drifted or 0.0))
                    if _finite(drift.prediction_drift):
                        families["tether_prediction_drift_score"].add_metric(
                            version_labels, float(drift.prediction_drift or 0.0))
        yield from families.values()
