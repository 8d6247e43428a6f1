"""Monitoring: drift against the training profile, live metrics from delayed labels,
label-free performance estimates and sequential change detection.

One concept per module: `profile`, `drift`, `live`, `estimation`, `detectors/`,
`monitor`, `exporter`, `report`, `backtest`.

The re-exports below are resolved on first use (PEP 562), so importing one module, as
`tether drift` imports `drift` and `profile`, does not pull scikit-learn in through
`estimation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.lazy import exports

if TYPE_CHECKING:
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

_HOME = {
    "Calibrator": "estimation",
    "DriftReport": "drift",
    "FeatureDrift": "drift",
    "MetricEstimate": "live",
    "Profile": "profile",
    "build_profile": "profile",
    "detect_drift": "drift",
    "estimate_performance": "estimation",
    "live_metrics": "live",
}


__getattr__, __dir__ = exports(__name__, _HOME)
