"""Whether the registry answers the server: metrics on every read, a log line per change.

A server keeps serving what it loaded while the registry is away; what it must not do is
stay silent about it. Every read of the registry ends in `succeeded()` or `failed()`:
`tether_registry_up` and `tether_registry_last_success_timestamp_seconds` follow each
read, `tether_registry_errors_total` counts the failed ones, and the log gets one line
when the registry goes away and one when it comes back, not one per poll.

>>> from prometheus_client import CollectorRegistry
>>> from tether.serving.metrics import ServingMetrics
>>> metrics = ServingMetrics(CollectorRegistry())
>>> now = iter([100.0, 102.0, 104.0, 130.0]).__next__
>>> health = RegistryHealth(metrics, "m", clock=now)
>>> health.succeeded()
>>> health.failed("RegistryUnavailable: connection refused")
True
>>> health.failed("RegistryUnavailable: connection refused")  # no new log line
False
>>> health.as_dict()["down_since"], health.up
(102.0, False)
>>> health.succeeded()
>>> metrics.registry.get_sample_value("tether_registry_errors_total", {"model": "m"})
2.0
>>> metrics.registry.get_sample_value("tether_registry_last_success_timestamp_seconds",
...                                   {"model": "m"})
130.0
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tether.serving.metrics import ServingMetrics

__all__ = ["RegistryHealth"]

log = logging.getLogger("tether.serving")


class RegistryHealth:
    """The registry's reachability as this server last saw it.

    `up` is None before the first read ends, then True or False after each one.
    """

    def __init__(self, metrics: ServingMetrics, model_name: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._up_gauge = metrics.registry_up.labels(model_name)
        self._errors = metrics.registry_errors.labels(model_name)
        self._last_success_gauge = metrics.registry_last_success.labels(model_name)
        self.up: bool | None = None
        self.since: float | None = None  # when `up` last changed
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.failures_in_a_row = 0

    def succeeded(self) -> None:
        now = self._clock()
        if self.up is False:
            log.warning("registry reachable again after %.0f s (%d failed reads); "
                        "following it again", now - (self.since or now),
                        self.failures_in_a_row)
        if self.up is not True:
            self.since = now
        self.up = True
        self.last_success = now
        self.failures_in_a_row = 0
        self._up_gauge.set(1)
        self._last_success_gauge.set(now)

    def failed(self, reason: str) -> bool:
        """Count one failed read; True when this one changed the state (and was logged)."""
        now = self._clock()
        self._errors.inc()
        self._up_gauge.set(0)
        self.last_error = reason
        self.failures_in_a_row += 1
        if self.up is False:
            return False
        self.up = False
        self.since = now
        log.warning("registry unreachable: %s; serving what is loaded and retrying "
                    "(logged again when it answers)", reason)
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "reachable": self.up,
            "last_success": self.last_success,
            "down_since": self.since if self.up is False else None,
            "last_error": self.last_error if self.up is False else None,
            "failed_reads_in_a_row": self.failures_in_a_row,
        }
