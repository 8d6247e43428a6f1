"""Writing predictions: batches, ids, duplicates."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tests.store.rows import record
from tether.errors import StoreError
from tether.store import Outputs, PredictionBatch, Store


def _batch(model: str, ids: list[str], ts: float) -> PredictionBatch:
    n = len(ids)
    return PredictionBatch(
        model_name=model, model_version=1, route="champion", ids=ids,
        features=pd.DataFrame({"x": np.arange(n, dtype=float)}),
        outputs=Outputs(ts=np.full(n, ts), prediction=np.ones(n), score=np.full(n, 0.6),
                        latency_ms=np.full(n, 1.0), error=np.zeros(n, dtype=bool)))


def test_duplicate_prediction_id_is_a_store_error(store: Store) -> None:
    store.log_predictions([record("a")])
    with pytest.raises(StoreError):
        store.log_predictions([record("a")])


def test_batches_skip_and_list_ids_already_stored_or_repeated(store: Store,
                                                              model: str) -> None:
    now = time.time()
    assert store.log_batches([_batch(model, ["a", "b"], now)]).written == 2
    result = store.log_batches([_batch(model, ["b", "c", "d"], now),
                                _batch(model, ["d", "e"], now)])
    assert (result.written, result.duplicate_ids) == (2, ["b", "d"])
    assert sorted(store.prediction_window(model)["id"]) == ["a", "b", "c", "e"]
    (bucket,) = store.traffic_buckets(model, since=now - 60, bucket_seconds=60)
    assert bucket.requests == 4  # the totals count what was written, once


def test_rows_without_ids_are_stored_and_cannot_be_labeled(store: Store, model: str) -> None:
    batch = _batch(model, ["x", "y"], time.time())
    anonymous = PredictionBatch(model_name=model, model_version=1, route="champion", ids=None,
                                features=batch.features, outputs=batch.outputs)
    assert store.log_batches([anonymous]).written == 2
    ids = store.prediction_window(model)["id"].tolist()
    assert all(pid.startswith("@") for pid in ids)
    assert store.add_feedback([(ids[0], 1.0)]).unknown_ids == [ids[0]]
