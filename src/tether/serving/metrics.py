"""The server's Prometheus metrics, built once per app into one registry.

Names, types and labels come from `tether.metric_names.METRICS`, the shared contract.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = ServingMetrics(registry=registry)
>>> metrics.predictions.labels("m", "1", "champion").inc(3)
>>> registry.get_sample_value("tether_predictions_total",
...                           {"model": "m", "version": "1", "route": "champion"})
3.0
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tether.metric_names import METRICS

__all__ = ["LATENCY_BUCKETS", "ROWS_BUCKETS", "ServingMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def _build(name: str, registry: CollectorRegistry, **extra: Any) -> Any:
    spec = METRICS[name]
    kind = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}[spec.kind]
    # prometheus_client appends _total to counters itself
    base = name.removesuffix("_total") if spec.kind == "counter" else name
    return kind(base, spec.help, labelnames=spec.labels, registry=registry, **extra)


class ServingMetrics:
    """Every metric the model server exports; `registry=` keeps tests independent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = _build("tether_http_requests_total", registry)
        self.http_duration = _build("tether_http_request_duration_seconds", registry,
                                    buckets=LATENCY_BUCKETS)
        self.predictions = _build("tether_predictions_total", registry)
        self.prediction_errors = _build("tether_prediction_errors_total", registry)
        self.predict_latency = _build("tether_predict_latency_seconds", registry,
                                      buckets=LATENCY_BUCKETS)
        self.batch_rows = _build("tether_batch_size_rows", registry, buckets=ROWS_BUCKETS)
        self.model_info = _build("tether_model_info", registry)
        self.rollout_weight = _build("tether_rollout_weight_ratio", registry)
        self.load_failures = _build("tether_model_load_failures_total", registry)
        self.log_queue_depth = _build("tether_prediction_log_queue_depth", registry)
        self.log_dropped = _build("tether_prediction_log_dropped_total", registry)
        self.log_written = _build("tether_prediction_log_written_total", registry)
        self.registry_up = _build("tether_registry_up", registry)
        self.registry_errors = _build("tether_registry_errors_total", registry)
        self.registry_last_success = _build("tether_registry_last_success_timestamp_seconds",
                                            registry)
        self.feedback_labels = _build("tether_feedback_labels_total", registry)
