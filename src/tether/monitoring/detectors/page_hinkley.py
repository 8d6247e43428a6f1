"""Page-Hinkley test for a change in the mean of a numeric stream (Page 1954).

Same parameters and behaviour as `river.drift.PageHinkley` (a fading cumulative sum of
deviations from the running mean, tested against `threshold` in either direction).

>>> import random
>>> rng = random.Random(12345)
>>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
>>> ph = PageHinkley()
>>> for i, x in enumerate(stream):
...     if ph.update(x).drift_detected:
...         print(f"Change detected at index {i}, input value: {x}")
Change detected at index 1006, input value: 5
"""

from __future__ import annotations

import math
from typing import Self

from tether.monitoring.detectors.base import DriftDetector

__all__ = ["PageHinkley"]

MODES = ("up", "down", "both")


class PageHinkley(DriftDetector):
    """Detects a shift of the mean by more than `delta`, once the sum passes `threshold`."""

    def __init__(self, min_instances: int = 30, delta: float = 0.005, threshold: float = 50.0,
                 alpha: float = 1 - 0.0001, mode: str = "both") -> None:
        if min_instances < 1:
            raise ValueError("min_instances must be at least 1.")
        if threshold <= 0:
            raise ValueError("threshold must be positive.")
        if not 0 < alpha <= 1:
            raise ValueError("alpha must lie in (0, 1].")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}.")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._n = 0
        self._mean = 0.0
        self._sum_increase = 0.0
        self._sum_decrease = 0.0
        self._min_increase = math.inf
        self._max_decrease = -1.0

    def update(self, x: float) -> Self:
        if self._drift_detected:
            self._reset()
        self._n += 1
        self._mean += (x - self._mean) / self._n
        deviation = x - self._mean
        self._sum_increase = self.alpha * self._sum_increase + deviation - self.delta
        self._sum_decrease = self.alpha * self._sum_decrease + deviation + self.delta
        self._min_increase = min(self._min_increase, self._sum_increase)
        self._max_decrease = max(self._max_decrease, self._sum_decrease)
        if self._n >= self.min_instances:
            up = self._sum_increase - self._min_increase > self.threshold
            down = self._max_decrease - self._sum_decrease > self.threshold
            self._drift_detected = (up and self.mode != "down") or (
                down and self.mode != "up")
        return self
