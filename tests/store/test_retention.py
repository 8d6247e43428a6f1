"""Retention: old predictions, their ids and labels, and old totals leave the store."""

from __future__ import annotations

import time
import uuid

from tests.store.rows import unique_model
from tether.store import PredictionRecord, Store

DAY = 86400.0
NOW = time.time()


def _log(store: Store, model: str, ts: float, n: int = 3) -> list[str]:
    ids = [f"{model}-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    store.log_predictions([PredictionRecord(
        id=pid, model_name=model, model_version=1, route="champion", features={"x": 1.0},
        prediction=1.0, score=0.8, latency_ms=2.0, ts=ts) for pid in ids])
    return ids


def test_prune_deletes_old_predictions_with_their_labels_and_keeps_totals(
        store: Store, model: str) -> None:
    old = _log(store, model, NOW - 40 * DAY)
    new = _log(store, model, NOW - 1 * DAY)
    store.add_feedback([(old[0], 1.0), (new[0], 1.0)])
    another = unique_model()
    other = _log(store, another, NOW - 40 * DAY)

    result = store.prune(model, predictions_before=NOW - 30 * DAY,
                         fine_totals_before=NOW - 7 * DAY)

    # and the 5-second totals older than a week (traffic and labels); minute totals stay
    assert (result.batches, result.predictions, result.labels, result.totals) == (1, 3, 1, 2)
    assert sorted(store.prediction_window(model)["id"]) == sorted(new)
    assert store.add_feedback([(old[1], 0.0)]).unknown_ids == [old[1]]
    assert store.count_predictions(another) == len(other)
    # the dashboard still sees the pruned minute until its totals expire
    since = NOW - 41 * DAY
    assert sum(b.requests for b in store.traffic_buckets(model, since=since,
                                                         bucket_seconds=3600)) == 6
    assert sum(b.labeled for b in store.label_buckets(model, since=since,
                                                      bucket_seconds=3600)) == 2
    result = store.prune(model, totals_before=NOW - 30 * DAY)
    assert result.totals == 2  # traffic and labels per minute
    assert sum(b.requests for b in store.traffic_buckets(model, since=since,
                                                         bucket_seconds=3600)) == 3
