"""Sequential change detectors, one per module, with river's API.

>>> sorted(DETECTORS)
['cusum', 'page_hinkley']
"""

from __future__ import annotations

from tether.monitoring.detectors.base import DriftDetector, detections
from tether.monitoring.detectors.cusum import BernoulliCUSUM
from tether.monitoring.detectors.page_hinkley import PageHinkley

__all__ = ["DETECTORS", "BernoulliCUSUM", "DriftDetector", "PageHinkley", "detections"]

DETECTORS: dict[str, type[DriftDetector]] = {
    "cusum": BernoulliCUSUM,
    "page_hinkley": PageHinkley,
}
