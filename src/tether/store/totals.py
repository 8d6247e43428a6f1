"""Totals of traffic and labels: one float64 vector per (time bucket, version).

A traffic vector holds requests, errors, latency and confidence sums, a geometric
latency histogram and a score histogram; a label vector holds the confusion counts,
error sums and the labeled score histogram. Vectors of the same kind add up, so
per-minute totals written by any number of writers merge into any wider bucket by
summing, and the same code aggregates raw rows when a bucket is not whole minutes.
How the writers keep them in the database is `kept_totals`.

>>> ts = np.array([0.0, 10.0, 70.0])
>>> groups, keys = group_rows(ts, np.array([1, 1, 1]), 60.0)
>>> keys, groups.tolist()
([(0.0, 1), (60.0, 1)], [0, 0, 1])
>>> totals = sum_traffic(groups, len(keys), latency_ms=np.array([1.0, 3.0, 2.0]),
...     error=np.array([False, True, False]), score=np.array([0.9, 0.2, np.nan]))
>>> [(b.requests, b.errors, b.mean_latency_ms, b.mean_confidence and round(b.mean_confidence, 3))
...  for b in traffic_buckets(keys, totals)]
[(2, 1, 2.0, 0.85), (1, 0, 2.0, None)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LABEL_WIDTH",
    "LATENCY_BIN_GROWTH",
    "SCORE_BINS",
    "TRAFFIC_WIDTH",
    "LabelBucket",
    "ScoreBin",
    "TrafficBucket",
    "group_rows",
    "label_buckets",
    "merge",
    "score_bins",
    "sum_labels",
    "sum_traffic",
    "traffic_buckets",
]

SCORE_BINS = 100
LATENCY_BIN_GROWTH = 1.1
_LATENCY_MIN_MS = 0.01
_LATENCY_BINS = 201  # 0.01 ms * 1.1**200 is about 19 hours; the last bin holds the rest

# traffic vector layout
_REQUESTS, _ERRORS, _LATENCY_SUM, _LATENCY_N, _CONFIDENCE_SUM, _SCORE_N = range(6)
_LATENCY = slice(6, 6 + _LATENCY_BINS)
_SCORE_COUNT = slice(_LATENCY.stop, _LATENCY.stop + SCORE_BINS)
_SCORE_SUM = slice(_SCORE_COUNT.stop, _SCORE_COUNT.stop + SCORE_BINS)
TRAFFIC_WIDTH = _SCORE_SUM.stop

# label vector layout
_LABELED, _TP, _FP, _FN, _TN, _ABS_ERROR, _SQUARED_ERROR = range(7)
_POSITIVES = slice(7, 7 + SCORE_BINS)
_NEGATIVES = slice(_POSITIVES.stop, _POSITIVES.stop + SCORE_BINS)
_LABELED_SCORE_SUM = slice(_NEGATIVES.stop, _NEGATIVES.stop + SCORE_BINS)
LABEL_WIDTH = _LABELED_SCORE_SUM.stop

_VERSION_BITS = 24  # a group key is bucket << 24 | version


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    """Predictions of one version in one time bucket.

    `p99_latency_ms` is read from a latency histogram whose bins grow by
    `LATENCY_BIN_GROWTH`, interpolated inside the bin as Prometheus's
    `histogram_quantile` does: within that factor of the exact value.
    """

    start: float
    version: int
    requests: int
    errors: int
    p99_latency_ms: float | None
    mean_latency_ms: float | None
    mean_confidence: float | None


@dataclass(frozen=True, slots=True)
class ScoreBin:
    """Predictions of one version in one time bucket whose score falls in one of
    `SCORE_BINS` equal bins of [0, 1]; `positives`/`negatives` count labeled rows."""

    start: float
    version: int
    bin: int
    count: int
    score_sum: float
    positives: int
    negatives: int


@dataclass(frozen=True, slots=True)
class LabelBucket:
    """Labeled predictions of one version in one bucket (by prediction time), with the
    confusion counts for binary tasks and absolute/squared errors for regression."""

    start: float
    version: int
    labeled: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    sum_abs_error: float
    sum_squared_error: float


def group_rows(ts: np.ndarray, version: np.ndarray, bucket_seconds: float,
               ) -> tuple[np.ndarray, list[tuple[float, int]]]:
    """Each row's group index and the groups' (bucket start, version), in order."""
    if not bucket_seconds > 0:
        raise ValueError(f"bucket_seconds must be positive, got {bucket_seconds!r}")
    bucket = np.floor(np.asarray(ts, dtype=float) / bucket_seconds).astype(np.int64)
    key = (bucket << _VERSION_BITS) | np.asarray(version, dtype=np.int64)
    unique, groups = np.unique(key, return_inverse=True)
    keys = [(float(k >> _VERSION_BITS) * bucket_seconds, int(k & ((1 << _VERSION_BITS) - 1)))
            for k in unique.tolist()]
    return groups.reshape(-1), keys


def sum_traffic(groups: np.ndarray, n_groups: int, *, latency_ms: np.ndarray,
                   error: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(n_groups, TRAFFIC_WIDTH) totals of rows assigned to groups by `group_rows`."""
    totals = np.zeros((n_groups, TRAFFIC_WIDTH))
    totals[:, _REQUESTS] = np.bincount(groups, minlength=n_groups)
    totals[:, _ERRORS] = np.bincount(groups, weights=error.astype(float), minlength=n_groups)
    timed = ~np.isnan(latency_ms)
    totals[:, _LATENCY_SUM] = np.bincount(groups[timed], weights=latency_ms[timed],
                                          minlength=n_groups)
    totals[:, _LATENCY_N] = np.bincount(groups[timed], minlength=n_groups)
    totals[:, _LATENCY] = _histogram(groups[timed], n_groups, _latency_bin(latency_ms[timed]),
                                     _LATENCY_BINS)
    scored = ~np.isnan(score)
    s, g = score[scored], groups[scored]
    totals[:, _CONFIDENCE_SUM] = np.bincount(g, weights=np.where(s >= 0.5, s, 1.0 - s),
                                             minlength=n_groups)
    totals[:, _SCORE_N] = np.bincount(g, minlength=n_groups)
    bins = _score_bin(s)
    totals[:, _SCORE_COUNT] = _histogram(g, n_groups, bins, SCORE_BINS)
    totals[:, _SCORE_SUM] = _histogram(g, n_groups, bins, SCORE_BINS, weights=s)
    return totals


def sum_labels(groups: np.ndarray, n_groups: int, *, prediction: np.ndarray,
                 score: np.ndarray, label: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """(n_groups, LABEL_WIDTH) totals of labeled rows; `sign=-1` takes labels away
    (a label replaced by a newer one)."""
    totals = np.zeros((n_groups, LABEL_WIDTH))
    totals[:, _LABELED] = np.bincount(groups, minlength=n_groups)
    predicted = ~np.isnan(prediction)
    p, y, g = prediction[predicted] >= 0.5, label[predicted] >= 0.5, groups[predicted]
    for column, hit in ((_TP, p & y), (_FP, p & ~y), (_FN, ~p & y), (_TN, ~p & ~y)):
        totals[:, column] = np.bincount(g, weights=hit.astype(float), minlength=n_groups)
    error = prediction[predicted] - label[predicted]
    totals[:, _ABS_ERROR] = np.bincount(g, weights=np.abs(error), minlength=n_groups)
    totals[:, _SQUARED_ERROR] = np.bincount(g, weights=error * error, minlength=n_groups)
    scored = ~np.isnan(score)
    s, g, y = score[scored], groups[scored], label[scored] >= 0.5
    bins = _score_bin(s)
    totals[:, _POSITIVES] = _histogram(g[y], n_groups, bins[y], SCORE_BINS)
    totals[:, _NEGATIVES] = _histogram(g[~y], n_groups, bins[~y], SCORE_BINS)
    totals[:, _LABELED_SCORE_SUM] = _histogram(g, n_groups, bins, SCORE_BINS, weights=s)
    return totals * sign


def merge(keys: Sequence[tuple[float, int]], totals: np.ndarray,
          ) -> tuple[list[tuple[float, int]], np.ndarray]:
    """Sum rows with the same key (per-minute rows of several writers, or of one wider
    bucket)."""
    if not keys:
        return [], totals
    unique = sorted(set(keys))
    index = {key: i for i, key in enumerate(unique)}
    merged = np.zeros((len(unique), totals.shape[1]))
    np.add.at(merged, np.array([index[key] for key in keys]), totals)
    return unique, merged


def traffic_buckets(keys: Sequence[tuple[float, int]], totals: np.ndarray,
                    ) -> list[TrafficBucket]:
    found = []
    for (start, version), row in zip(keys, totals, strict=True):
        if row[_REQUESTS] <= 0:
            continue
        latency_n, score_n = row[_LATENCY_N], row[_SCORE_N]
        found.append(TrafficBucket(
            start=start, version=version, requests=int(row[_REQUESTS]),
            errors=int(row[_ERRORS] + 0.5),
            p99_latency_ms=_histogram_quantile(row[_LATENCY], 0.99),
            mean_latency_ms=float(row[_LATENCY_SUM] / latency_n) if latency_n else None,
            mean_confidence=float(row[_CONFIDENCE_SUM] / score_n) if score_n else None))
    return found


def label_buckets(keys: Sequence[tuple[float, int]], totals: np.ndarray) -> list[LabelBucket]:
    return [
        LabelBucket(start=start, version=version, labeled=int(row[_LABELED]),
                    true_positives=int(row[_TP]), false_positives=int(row[_FP]),
                    false_negatives=int(row[_FN]), true_negatives=int(row[_TN]),
                    sum_abs_error=float(row[_ABS_ERROR]),
                    sum_squared_error=float(row[_SQUARED_ERROR]))
        for (start, version), row in zip(keys, totals, strict=True) if row[_LABELED] > 0
    ]


def score_bins(keys: Sequence[tuple[float, int]], totals: np.ndarray, *, labeled: bool,
               ) -> list[ScoreBin]:
    """Non-empty score bins: of every prediction (traffic totals) or of labeled ones
    (label totals)."""
    found = []
    for (start, version), row in zip(keys, totals, strict=True):
        if labeled:
            positives, negatives = row[_POSITIVES], row[_NEGATIVES]
            counts, sums = positives + negatives, row[_LABELED_SCORE_SUM]
        else:
            counts, sums = row[_SCORE_COUNT], row[_SCORE_SUM]
        for index in np.flatnonzero(counts > 0).tolist():
            found.append(ScoreBin(
                start=start, version=version, bin=index, count=int(counts[index]),
                score_sum=float(sums[index]),
                positives=int(positives[index]) if labeled else 0,
                negatives=int(negatives[index]) if labeled else 0))
    return found


def _histogram(groups: np.ndarray, n_groups: int, bins: np.ndarray, width: int,
               weights: np.ndarray | None = None) -> np.ndarray:
    flat = np.bincount(groups * width + bins, weights=weights, minlength=n_groups * width)
    return flat.reshape(n_groups, width)


def _score_bin(score: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(score * SCORE_BINS), 0, SCORE_BINS - 1).astype(np.int64)


def _latency_bin(latency_ms: np.ndarray) -> np.ndarray:
    """floor(ln(latency / MIN) / ln(GROWTH)): geometric bins from 0.01 ms."""
    ratio = np.maximum(latency_ms, _LATENCY_MIN_MS) / _LATENCY_MIN_MS
    index = np.floor(np.log(ratio) / math.log(LATENCY_BIN_GROWTH))
    return np.clip(index, 0, _LATENCY_BINS - 1).astype(np.int64)


def _latency_bin_edge(index: int) -> float:
    return float(_LATENCY_MIN_MS * LATENCY_BIN_GROWTH ** index)


def _histogram_quantile(counts: np.ndarray, q: float) -> float | None:
    """The q-quantile of the geometric latency histogram, linear inside its bin.

    >>> counts = np.zeros(_LATENCY_BINS); counts[[0, 10]] = 50
    >>> round(_histogram_quantile(counts, 0.99), 4)
    0.0285
    >>> _histogram_quantile(np.zeros(_LATENCY_BINS), 0.99) is None
    True
    """
    total = float(counts.sum())
    if total <= 0:
        return None
    rank = q * total
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, rank - 1e-9))
    index = min(index, len(counts) - 1)
    seen = float(cumulative[index - 1]) if index else 0.0
    low, high = _latency_bin_edge(index), _latency_bin_edge(index + 1)
    return float(low + (high - low) * (rank - seen) / float(counts[index]))
