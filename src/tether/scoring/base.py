"""What a metric is: the task it belongs to, its direction and range, the sources it can
be computed from (labeled rows, running counts, score histograms) and when the data does
not define it.

A metric that the data does not define raises `Undefined` with the reason; nothing
reports 0/0 as a number. `Scores` carries the values (None where undefined) and the
reasons together, so every output can say null *and* why.

>>> from tether.scoring import metric
>>> rmse = metric("regression", "rmse")
>>> rmse.direction.value, rmse.improvement(54.2, 56.1) > 0
('minimize', True)
>>> rmse.change(56.1, 54.2)
'rmse 56.1 -> 54.2, 1.9 better'
>>> rmse.against(58.0, 0.7)
'rmse 58 worse than ceiling 0.7'
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from tether.scoring.tasks import Task

__all__ = ["Direction", "Metric", "Scores", "Source", "Task", "Undefined"]


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Source(StrEnum):
    """Where a metric can be computed from."""

    ROWS = "rows"            # labeled rows: y_true, y_pred and, for some, y_score
    COUNTS = "counts"        # running counts a database keeps (confusion, error sums)
    HISTOGRAM = "histogram"  # per-bin counts of labeled positives and negatives by score


class Undefined(Exception):
    """The data does not define the metric; `str(exc)` is the reason (e.g. 0/0)."""


class Metric(ABC):
    """One metric of one task. Stateless: every method computes from what it is given.

    Subclasses set the class attributes and implement `from_rows`; those that can be
    computed from running counts or score histograms list the source in `sources` and
    implement `from_counts` / `from_histogram`. Every path raises `Undefined` for data
    that does not define the metric, so the rule lives in one place.
    """

    name: ClassVar[str]
    task: ClassVar[Task]
    bigger_is_better: ClassVar[bool] = True
    lowest: ClassVar[float] = -math.inf   # the range of the metric's values
    highest: ClassVar[float] = math.inf
    needs_scores: ClassVar[bool] = False  # computed from predicted probabilities
    sources: ClassVar[frozenset[Source]] = frozenset({Source.ROWS})
    estimable: ClassVar[bool] = False     # label-free estimate (CBPE) from calibrated scores
    description: ClassVar[str] = ""

    # computing ------------------------------------------------------------------------

    @abstractmethod
    def from_rows(self, y_true: np.ndarray, y_pred: np.ndarray,
                  y_score: np.ndarray | None = None, *,
                  classes: Sequence[Any] | None = None) -> float:
        """The metric of labeled rows. `y_score` is the positive-class probability (n,)
        for binary tasks or the class probabilities (n, k), columns in `classes` order,
        for multiclass ones. Raises `Undefined`."""

    def from_counts(self, counts: Any) -> float:
        """The metric from running counts (see `tether.scoring.counts`). Raises
        `Undefined`, or `NotImplementedError` when `Source.COUNTS` is not in `sources`."""
        raise NotImplementedError(f"{self.name} cannot be computed from counts")

    def from_histogram(self, positives: Mapping[int, float],
                       negatives: Mapping[int, float]) -> float:
        """The metric from per-bin counts of labeled positives and negatives, bins
        ordered by score. Raises `Undefined` or `NotImplementedError`."""
        raise NotImplementedError(f"{self.name} cannot be computed from a histogram")

    def support(self, counts: Any) -> float:
        """The rows the figure rests on (e.g. actual positives for recall)."""
        return float(counts.n)

    # direction ------------------------------------------------------------------------

    @property
    def direction(self) -> Direction:
        return Direction.MAXIMIZE if self.bigger_is_better else Direction.MINIMIZE

    @property
    def limit_name(self) -> str:
        """What a worst acceptable value is called: a floor, or a ceiling."""
        return "floor" if self.bigger_is_better else "ceiling"

    def improvement(self, candidate: float, baseline: float) -> float:
        """How much better `candidate` is than `baseline`; positive when better."""
        return candidate - baseline if self.bigger_is_better else baseline - candidate

    def worse(self, value: float, limit: float) -> bool:
        """True when `value` is strictly on the bad side of `limit`."""
        return self.improvement(value, limit) < 0

    # words ----------------------------------------------------------------------------

    @property
    def unit_range(self) -> bool:
        return self.lowest >= 0 and self.highest <= 1

    def format(self, value: float | None) -> str:
        """A value as messages print it: 4 decimals for [0, 1] metrics, else 4 digits."""
        if value is None or not math.isfinite(value):
            return "undefined"
        return f"{value:.4f}" if self.unit_range else f"{value:.4g}"

    def words(self, gain: float) -> str:
        """An improvement in words: '1.9 better', '0.0100 worse', 'unchanged'."""
        if gain == 0:
            return "unchanged"
        return f"{self.format(abs(gain))} {'better' if gain > 0 else 'worse'}"

    def change(self, baseline: float, candidate: float) -> str:
        """'rmse 56.1 -> 54.2, 1.9 better': baseline first, the direction in words."""
        return (f"{self.name} {self.format(baseline)} -> {self.format(candidate)}, "
                f"{self.words(self.improvement(candidate, baseline))}")

    def against(self, value: float, limit: float) -> str:
        """'roc_auc 0.8123 above floor 0.7000', 'rmse 58 worse than ceiling 0.7'."""
        where = ("worse than" if self.worse(value, limit)
                 else "at" if value == limit
                 else "above" if self.bigger_is_better else "below")
        return f"{self.name} {self.format(value)} {where} {self.limit_name} {self.format(limit)}"

    def __repr__(self) -> str:
        return f"<metric {self.name} ({self.task.value}, {self.direction.value})>"


class Scores(dict[str, float | None]):
    """Metric name -> value, None where the data does not define it; `reasons[name]`
    says why. A dict, so it serialises as one; the reasons travel beside it.

    >>> scores = Scores({"accuracy": 0.9, "recall": None}, {"recall": "no positive labels"})
    >>> scores.defined(), scores.reasons
    ({'accuracy': 0.9}, {'recall': 'no positive labels'})
    """

    def __init__(self, values: Mapping[str, float | None] | Iterable[tuple[str, float | None]]
                 = (), reasons: Mapping[str, str] | None = None) -> None:
        super().__init__(values)
        self.reasons: dict[str, str] = dict(reasons or {})

    def defined(self) -> dict[str, float]:
        return {name: value for name, value in self.items() if value is not None}

    def reason(self, name: str) -> str | None:
        return self.reasons.get(name)

    def __repr__(self) -> str:
        return f"Scores({dict(self)!r}, reasons={self.reasons!r})"
