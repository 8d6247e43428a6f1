"""Every Prometheus metric tether exports: name, type and labels.

The serving app, the monitoring collector and the controller define their metrics
with these names; the Grafana dashboard and the Prometheus rules may only query these.
Label `route` is the traffic arm (champion, canary, shadow). Each metric names the part
that exports it (`source`): `tether serve` exports the server's and monitoring's,
`tether controller` the controller's, `tether up` all three (see `tether.apps`).

>>> sorted(name for name, spec in METRICS.items() if spec.kind == "counter")[:2]
['tether_feedback_labels_total', 'tether_http_requests_total']
>>> all(name.startswith("tether_") for name in METRICS)
True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRICS", "SOURCES", "MetricSpec", "exported_by", "exported_series"]


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # counter, gauge, histogram
    labels: tuple[str, ...]
    help: str
    source: str = "server"  # the part that exports it: server, monitoring or controller


_MODEL = ("model", "version", "route")
SOURCES = ("server", "monitoring", "controller")


def _monitoring(kind: str, labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec(kind, labels, text, source="monitoring")


def _controller(kind: str, labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec(kind, labels, text, source="controller")


METRICS: dict[str, MetricSpec] = {
    # serving
    "tether_http_requests_total": MetricSpec(
        "counter", ("endpoint", "method", "status"), "HTTP requests by endpoint and status."),
    "tether_http_request_duration_seconds": MetricSpec(
        "histogram", ("endpoint",), "HTTP request duration."),
    "tether_predictions_total": MetricSpec("counter", _MODEL, "Rows predicted."),
    "tether_prediction_errors_total": MetricSpec("counter", _MODEL, "Model calls that failed."),
    "tether_predict_latency_seconds": MetricSpec("histogram", _MODEL, "One model call."),
    "tether_batch_size_rows": MetricSpec(
        "histogram", ("model", "version"), "Rows per model call."),
    "tether_model_info": MetricSpec("gauge", _MODEL, "1 for each version being served."),
    "tether_rollout_weight_ratio": MetricSpec(
        "gauge", ("model", "version"), "Canary traffic fraction."),
    "tether_model_load_failures_total": MetricSpec(
        "counter", ("model", "version"), "Versions that failed to load or warm."),
    "tether_prediction_log_queue_depth": MetricSpec("gauge", (), "Predictions waiting."),
    "tether_prediction_log_dropped_total": MetricSpec("counter", (), "Predictions dropped."),
    "tether_prediction_log_written_total": MetricSpec("counter", (), "Predictions written."),
    "tether_registry_up": MetricSpec(
        "gauge", ("model",), "1 when the server's last registry read succeeded, else 0."),
    "tether_registry_errors_total": MetricSpec(
        "counter", ("model",), "Registry reads that failed or did not answer in time."),
    "tether_registry_last_success_timestamp_seconds": MetricSpec(
        "gauge", ("model",), "Unix time of the server's last successful registry read."),
    "tether_feedback_labels_total": MetricSpec("counter", ("model",), "Labels accepted."),
    # monitoring (computed from the store by every server, and by `tether up`)
    "tether_live_metric": _monitoring(
        "gauge", (*_MODEL, "metric"), "Metric from labels over the live window."),
    "tether_live_metric_ci_lower": _monitoring(
        "gauge", (*_MODEL, "metric"), "Lower confidence bound of the live metric."),
    "tether_live_metric_ci_upper": _monitoring(
        "gauge", (*_MODEL, "metric"), "Upper confidence bound of the live metric."),
    "tether_live_metric_samples": _monitoring("gauge", _MODEL, "Labeled rows in the window."),
    "tether_label_coverage_ratio": _monitoring("gauge", _MODEL, "Labeled / predicted."),
    "tether_estimated_metric": _monitoring(
        "gauge", (*_MODEL, "metric"), "Label-free performance estimate."),
    "tether_feature_drift_score": _monitoring(
        "gauge", ("model", "version", "feature", "method"), "Drift of one feature."),
    "tether_drift_share_ratio": _monitoring(
        "gauge", ("model", "version"), "Share of drifted features."),
    "tether_prediction_drift_score": _monitoring(
        "gauge", ("model", "version"), "Drift of the predictions."),
    "tether_change_detected": _monitoring(
        "gauge", ("model", "version", "stream"), "1 when the change detector fired."),
    # controller
    "tether_rollout_step": _controller("gauge", ("model", "version"), "Current rollout step."),
    "tether_retrains_total": _controller("counter", ("model", "trigger"), "Retrains started."),
    "tether_promotions_total": _controller("counter", ("model",), "Promotions."),
    "tether_rollbacks_total": _controller("counter", ("model",), "Rollbacks."),
    "tether_triggers_total": _controller("counter", ("model", "kind"), "Triggers received."),
    "tether_controller_condition": _controller(
        "gauge", ("model", "condition", "status"),
        "1 for the status each controller condition has now, 0 for the other two."),
}


def exported_by(source: str) -> set[str]:
    """The metrics one part exports.

    >>> sorted(exported_by("controller"))[:2]
    ['tether_controller_condition', 'tether_promotions_total']
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: expected one of {', '.join(SOURCES)}")
    return {name for name, spec in METRICS.items() if spec.source == source}


def exported_series(name: str) -> set[str]:
    """The sample names Prometheus sees for a metric (histograms have three, counters end
    in _total already).

    >>> sorted(exported_series("tether_batch_size_rows"))
    ['tether_batch_size_rows_bucket', 'tether_batch_size_rows_count', 'tether_batch_size_rows_sum']
    """
    if METRICS[name].kind == "histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return {name}
