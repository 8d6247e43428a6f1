"""The dashboard's aggregates, from kept totals or rows, on SQLite and (when configured)
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.store.rows import T0, log_one
from tether.store import PredictionRecord, Store


def test_traffic_buckets_count_errors_and_latency_per_version(store: Store, model: str) -> None:
    for i in range(100):
        log_one(store, model, 1, T0 + i * 0.5, score=0.9, latency=10.0 if i < 98 else 500.0,
             error=i % 10 == 0)
    for i in range(10):
        log_one(store, model, 2, T0 + 61 + i, score=0.2, latency=2.0)
    log_one(store, model, 1, T0 - 1, score=0.5, latency=1.0)  # before the window
    found = store.traffic_buckets(model, since=T0, bucket_seconds=60)
    assert [(b.start, b.version, b.requests, b.errors) for b in found] == [
        (T0, 1, 100, 10), (T0 + 60, 2, 10, 0)]
    first, second = found
    assert first.mean_latency_ms == pytest.approx((98 * 10 + 2 * 500) / 100)
    assert first.p99_latency_ms == pytest.approx(500.0, rel=0.1)
    assert second.p99_latency_ms == pytest.approx(2.0, rel=0.1)
    assert first.mean_confidence == pytest.approx(0.9)
    assert second.mean_confidence == pytest.approx(0.8)
    assert store.traffic_buckets(model, since=T0, until=T0 + 60, bucket_seconds=60) == [first]


def test_label_buckets_hold_the_confusion_counts(store: Store, model: str) -> None:
    cases = [(0.9, 1.0)] * 3 + [(0.8, 0.0)] * 2 + [(0.1, 1.0)] + [(0.2, 0.0)] * 4
    for i, (score, label) in enumerate(cases):
        log_one(store, model, 1, T0 + i, score=score, latency=1.0, label=label)
    log_one(store, model, 1, T0 + 20, score=0.9, latency=1.0)  # no label yet
    (bucket,) = store.label_buckets(model, since=T0, bucket_seconds=600)
    assert (bucket.start, bucket.labeled, bucket.true_positives, bucket.false_positives,
            bucket.false_negatives, bucket.true_negatives) == (T0, 10, 3, 2, 1, 4)
    assert bucket.sum_abs_error == pytest.approx(3.0)


def test_score_histogram_bins_scores_and_labels(store: Store, model: str) -> None:
    for i, (score, label) in enumerate([(0.0, 0.0), (0.005, 1.0), (0.51, 1.0), (0.519, 0.0),
                                        (1.0, 1.0)]):
        log_one(store, model, 1, T0 + i, score=score, latency=1.0, label=label)
    log_one(store, model, 1, T0 + 9, score=0.515, latency=1.0)
    every = store.score_histogram(model, since=T0, bucket_seconds=60, labeled=False)
    assert sorted((b.bin, b.count, round(b.score_sum, 3)) for b in every) == [
        (0, 2, 0.005), (51, 3, 1.544), (99, 1, 1.0)]
    labeled = store.score_histogram(model, since=T0, bucket_seconds=60, labeled=True)
    assert sorted((b.bin, b.positives, b.negatives) for b in labeled) == [
        (0, 1, 1), (51, 1, 1), (99, 1, 0)]


def test_bucket_width_must_be_positive(store: Store, model: str) -> None:
    with pytest.raises(ValueError, match="bucket_seconds must be positive, got 0"):
        store.traffic_buckets(model, since=T0, bucket_seconds=0)


def _random_history(store: Store, model: str, rng: np.random.Generator, n: int) -> None:
    ts = T0 + np.sort(rng.uniform(0, 1800, n))
    scores = rng.beta(2, 3, n)
    records = [PredictionRecord(
        id=f"{model}-{i}", model_name=model, model_version=1 + int(t > T0 + 900) + i % 7 // 6,
        route="champion", features={"x": float(s)}, prediction=float(s >= 0.5),
        score=float(s), latency_ms=float(rng.lognormal(1.0, 0.7)), error=bool(i % 97 == 0),
        ts=float(t)) for i, (t, s) in enumerate(zip(ts, scores, strict=True))]
    for start in range(0, n, 250):
        store.log_predictions(records[start:start + 250])
    labeled = rng.choice(n, n // 3, replace=False)
    store.add_feedback((f"{model}-{i}", float(rng.random() < scores[i])) for i in labeled)


@pytest.mark.parametrize("width", [60.0, 300.0, 45.0, 7.0])
def test_buckets_match_pandas_on_the_same_rows(store: Store, model: str, width: float) -> None:
    """Buckets of whole minutes or whole 5 s come from kept totals, others from the rows;
    all must say what pandas says of the rows themselves."""
    _random_history(store, model, np.random.default_rng(1), 3000)
    window = {"since": T0, "until": T0 + 1800, "bucket_seconds": width}
    rows = store.prediction_window(model, features=False)
    rows["bucket"] = (rows["ts"] // width) * width
    grouped = rows.groupby(["bucket", "model_version"])
    expected = grouped.agg(requests=("id", "size"), errors=("error", "sum"),
                           latency=("latency_ms", "mean"))
    found = store.traffic_buckets(model, **window)
    assert [(b.start, b.version, b.requests, b.errors) for b in found] == [
        (t, v, int(r.requests), int(r.errors)) for (t, v), r in expected.iterrows()]
    for bucket in found:
        group = grouped.get_group((bucket.start, bucket.version))
        assert bucket.mean_latency_ms == pytest.approx(group["latency_ms"].mean())
        exact = float(np.quantile(group["latency_ms"], 0.99, method="inverted_cdf"))
        assert bucket.p99_latency_ms == pytest.approx(exact, rel=0.1)  # one bin wide
    labeled = rows.dropna(subset=["label"])
    labels = store.label_buckets(model, **window)
    assert sum(b.labeled for b in labels) == len(labeled) == 1000
    predicted, actual = labeled["prediction"] >= 0.5, labeled["label"] >= 0.5
    assert sum(b.true_positives for b in labels) == int((predicted & actual).sum())
    assert sum(b.false_negatives for b in labels) == int((~predicted & actual).sum())
    bins = store.score_histogram(model, labeled=True, **window)
    assert sum(b.positives for b in bins) == int(actual.sum())
    every = store.score_histogram(model, labeled=False, **window)
    assert sum(b.count for b in every) == len(rows)


def test_writers_in_several_processes_add_up(tmp_path: Path, model: str) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first, second = Store(url), Store(url)
    log_one(first, model, 1, T0 + 1, score=0.9, latency=5.0, label=1.0)
    log_one(second, model, 1, T0 + 2, score=0.2, latency=5.0, label=1.0)
    log_one(first, model, 1, T0 + 3, score=0.8, latency=5.0)
    third = Store(url)  # a reader that wrote nothing
    (bucket,) = third.traffic_buckets(model, since=T0, bucket_seconds=60)
    assert bucket.requests == 3
    (labels,) = third.label_buckets(model, since=T0, bucket_seconds=60)
    assert (labels.labeled, labels.true_positives, labels.false_negatives) == (2, 1, 1)
