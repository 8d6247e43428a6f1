"""The store's dashboard aggregates, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.store import PredictionRecord, Store

T0 = 1_699_999_800.0  # a multiple of 60 and 600



@pytest.fixture
def model() -> str:
    """A model name of its own, so a shared PostgreSQL database needs no cleaning."""
    return f"m-{uuid.uuid4().hex[:8]}"


def _log(store: Store, model: str, version: int, ts: float, *, score: float,
         latency: float, error: bool = False, label: float | None = None) -> None:
    pid = uuid.uuid4().hex
    store.log_predictions([PredictionRecord(
        id=pid, model_name=model, model_version=version, route="champion", features={"x": 1},
        prediction=float(score >= 0.5), score=score, latency_ms=latency, error=error, ts=ts)])
    if label is not None:
        store.add_feedback([(pid, label)])


def test_traffic_buckets_count_errors_and_latency_per_version(store: Store, model: str) -> None:
    for i in range(100):
        _log(store, model, 1, T0 + i * 0.5, score=0.9, latency=10.0 if i < 98 else 500.0,
             error=i % 10 == 0)
    for i in range(10):
        _log(store, model, 2, T0 + 61 + i, score=0.2, latency=2.0)
    _log(store, model, 1, T0 - 1, score=0.5, latency=1.0)  # before the window
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
        _log(store, model, 1, T0 + i, score=score, latency=1.0, label=label)
    _log(store, model, 1, T0 + 20, score=0.9, latency=1.0)  # no label yet
    (bucket,) = store.label_buckets(model, since=T0, bucket_seconds=600)
    assert (bucket.start, bucket.labeled, bucket.true_positives, bucket.false_positives,
            bucket.false_negatives, bucket.true_negatives) == (T0, 10, 3, 2, 1, 4)
    assert bucket.sum_abs_error == pytest.approx(3.0)


def test_score_histogram_bins_scores_and_labels(store: Store, model: str) -> None:
    for i, (score, label) in enumerate([(0.0, 0.0), (0.005, 1.0), (0.51, 1.0), (0.519, 0.0),
                                        (1.0, 1.0)]):
        _log(store, model, 1, T0 + i, score=score, latency=1.0, label=label)
    _log(store, model, 1, T0 + 9, score=0.515, latency=1.0)
    every = store.score_histogram(model, since=T0, bucket_seconds=60, labeled=False)
    assert sorted((b.bin, b.count, round(b.score_sum, 3)) for b in every) == [
        (0, 2, 0.005), (51, 3, 1.544), (99, 1, 1.0)]
    labeled = store.score_histogram(model, since=T0, bucket_seconds=60, labeled=True)
    assert sorted((b.bin, b.positives, b.negatives) for b in labeled) == [
        (0, 1, 1), (51, 1, 1), (99, 1, 0)]


def test_recent_samples_take_the_latest_rows_of_each_window(store: Store, model: str) -> None:
    for i in range(10):
        _log(store, model, 1, T0 + i, score=i / 10, latency=1.0, label=float(i % 2))
    latest, labeled = store.recent_samples(model, [(1, T0, T0 + 5), (1, T0 + 5, T0 + 10)],
                                           limit=3, labeled_only=True)
    assert latest["score"].round(1).tolist() == [0.4, 0.3, 0.2]
    assert labeled["label"].tolist() == [1.0, 0.0, 1.0]
    (unlabeled,) = store.recent_samples(model, [(1, T0, T0 + 10)], limit=2, labeled_only=False)
    assert unlabeled["label"].isna().all() and len(unlabeled) == 2


def test_bucket_width_must_be_positive(store: Store, model: str) -> None:
    with pytest.raises(ValueError, match="bucket_seconds must be positive, got 0"):
        store.traffic_buckets(model, since=T0, bucket_seconds=0)


def test_an_older_store_gets_the_covering_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_predictions_model_ts_covering"))
    Store(url).close()
    names = {index["name"] for index in sa.inspect(engine).get_indexes("tether_predictions")}
    assert "ix_predictions_model_ts_covering" in names
