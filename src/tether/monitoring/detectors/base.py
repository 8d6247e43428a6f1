"""What every change detector shares: `update(x) -> self`, `drift_detected`, `_reset()`."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Self

__all__ = ["DriftDetector", "detections"]


class DriftDetector(abc.ABC):
    """A sequential change detector, fed one value at a time.

    `drift_detected` is True right after the update that found a change; the next update
    starts over (`_reset()`), so each alarm marks one change.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._drift_detected = False

    @property
    def drift_detected(self) -> bool:
        return self._drift_detected

    @abc.abstractmethod
    def update(self, x: float) -> Self:
        """Take one value; afterwards `drift_detected` says whether it completed a change."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def detections(detector: DriftDetector, values: Iterable[float]) -> list[int]:
    """Feed `values` in order; the indices at which the detector fired."""
    fired = []
    for index, value in enumerate(values):
        if detector.update(value).drift_detected:
            fired.append(index)
    return fired
