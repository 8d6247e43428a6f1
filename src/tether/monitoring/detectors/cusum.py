"""One-sided Bernoulli CUSUM: a rise in a rate (errors, expected errors), with a stated
false alarm rate.

Page's CUSUM on the log-likelihood ratio of "rate = `ratio` x p0" against "rate = p0"
is the fastest detector of that change for a given false alarm rate (Lorden's
optimality). p0 is the rate over the first `warmup` values after each (re)start, unless
given. The threshold is h = ln(`arl`), so that, by Wald's bound, in-control runs average
at least `arl` values between false alarms. Values may be 0/1 or fractions in [0, 1]
(e.g. the calibrated probability that a prediction is wrong): the statistic is linear in
x, and fractional values have less variance than 0/1 ones, so the bound still holds.

Written here rather than taken from river because river has no CUSUM, and on the error
streams it is measured faster than river's ADWIN at fewer false alarms
(`benchmarks/monitoring/change_detection.py`).

>>> import random
>>> rng = random.Random(7)
>>> stream = ([rng.random() < 0.05 for _ in range(3000)]
...           + [rng.random() < 0.15 for _ in range(2000)])
>>> cusum = BernoulliCUSUM()
>>> for i, x in enumerate(stream):
...     if cusum.update(x).drift_detected:
...         print(f"Change detected at index {i}")
Change detected at index 3286
"""

from __future__ import annotations

import math
from typing import Self

from tether.monitoring.detectors.base import DriftDetector

__all__ = ["BernoulliCUSUM"]

MAX_RATE = 0.999


class BernoulliCUSUM(DriftDetector):
    """Fires when the rate rises towards `ratio` times its in-control level."""

    def __init__(self, ratio: float = 2.0, arl: float = 500_000, warmup: int = 1000,
                 p0: float | None = None) -> None:
        if ratio <= 1:
            raise ValueError("ratio must be greater than 1 (the rise to detect).")
        if arl <= 1:
            raise ValueError("arl must be greater than 1.")
        if warmup < 1:
            raise ValueError("warmup must be at least 1.")
        if p0 is not None and not 0 < p0 < MAX_RATE:
            raise ValueError(f"p0 must lie in (0, {MAX_RATE}).")
        self.ratio = ratio
        self.arl = arl
        self.warmup = warmup
        self.p0 = p0
        self._threshold = math.log(arl)
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._seen = 0
        self._total = 0.0
        self._statistic = 0.0
        self._weights: tuple[float, float] | None = (
            None if self.p0 is None else self._design(self.p0))

    def _design(self, p0: float) -> tuple[float, float]:
        p1 = min(self.ratio * p0, MAX_RATE)
        p0 = min(p0, p1 / self.ratio)
        return math.log(p1 / p0), math.log((1 - p1) / (1 - p0))

    @property
    def statistic(self) -> float:
        """The CUSUM; an alarm when it passes ln(arl)."""
        return self._statistic

    def update(self, x: float) -> Self:
        if self._drift_detected:
            self._reset()
        x = float(x)
        self._seen += 1
        self._total += x
        if self.p0 is None:
            if self._seen < self.warmup:
                return self
            # p0 keeps learning from every value since the (re)start: a noisy warm-up
            # estimate would otherwise cause false alarms on long in-control streams.
            # Jeffreys' estimate is never 0, so a clean warm-up still gives a design.
            self._weights = self._design((self._total + 0.5) / (self._seen + 1))
        assert self._weights is not None
        rise, fall = self._weights
        self._statistic = max(0.0, self._statistic + x * rise + (1.0 - x) * fall)
        self._drift_detected = self._statistic > self._threshold
        return self
