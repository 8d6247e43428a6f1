"""Monitoring: drift against the training profile, live metrics from delayed labels,
label-free performance estimates and sequential change detection.

One concept per module: `profile`, `drift`, `live`, `estimation`, `detectors/`,
`monitor`, `exporter`, `report`, `backtest`.
"""

from __future__ import annotations

from tether.monitoring.drift import DriftReport, FeatureDrift, detect_drift
from tether.monitoring.estimation import Calibrator, estimate_performance
from tether.monitoring.live import MetricEstimate, live_metrics
from tether.monitoring.profile import Profile, build_profile

__all__ = [
    "Calibrator",
    "DriftReport",
    "FeatureDrift",
    "MetricEstimate",
    "Profile",
    "build_profile",
    "detect_drift",
    "estimate_performance",
    "live_metrics",
]
