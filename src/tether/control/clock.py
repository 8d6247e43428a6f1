"""What "now" is for the controller: the system clock, or one a test or a replay moves.

Every decision the controller takes reads the time it is given (`plan(..., now)`), and
the pass takes it from one clock, so the whole loop can run in simulated time.

>>> clock = ManualClock(1_000.0)
>>> clock(), clock.advance(30.0), clock()
(1000.0, 1030.0, 1030.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Clock", "ManualClock", "system_clock"]

Clock = Callable[[], float]
"""Seconds since the epoch, as `time.time()` gives them."""


def system_clock() -> float:
    return time.time()


@dataclass
class ManualClock:
    """A clock that only moves when told to."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
