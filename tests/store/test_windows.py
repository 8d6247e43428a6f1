"""Windows of predictions: newest rows, joined to labels and features; counts; samples."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tests.store.rows import T0, log_one, record
from tether.store import Outputs, PredictionBatch, PredictionRecord, Store, writes


def test_window_joins_labels_and_spreads_features(store: Store) -> None:
    now = time.time()
    store.log_predictions([record("a", ts=now - 2, x=1.0, kind="u"),
                           record("b", ts=now - 1, x=2.0, kind="v"),
                           record("c", version=2, route="canary", ts=now, x=3.0, kind="w")])
    store.add_feedback([("b", 0.0)])
    window = store.prediction_window("m")
    assert list(window["id"]) == ["a", "b", "c"]
    assert window["label"].isna().tolist() == [True, False, True]
    assert list(window["kind"]) == ["u", "v", "w"]
    assert list(store.prediction_window("m", labeled_only=True)["id"]) == ["b"]
    assert list(store.prediction_window("m", version=2)["route"]) == ["canary"]
    assert list(store.prediction_window("m", limit=2)["id"]) == ["b", "c"]
    assert store.count_predictions("m", since=now - 1.5) == 2
    assert store.prediction_window("other").empty


def test_a_window_reaches_across_batches_and_cuts_at_the_limit(store: Store,
                                                                model: str) -> None:
    for start in range(0, 50, 10):
        store.log_predictions([PredictionRecord(
            id=f"{model}-{i}", model_name=model, model_version=1, route="champion",
            features={"x": float(i), "kind": "a" if i % 2 else "b"}, prediction=1.0,
            score=0.5, ts=T0 + i) for i in range(start, start + 10)])
    window = store.prediction_window(model, limit=15, since=T0 + 5)
    assert window["x"].tolist() == [float(i) for i in range(35, 50)]
    assert window["kind"].tolist()[:2] == ["a", "b"]
    assert store.count_predictions(model, since=T0 + 5) == 45
    assert store.prediction_window(model, until=T0 + 3)["id"].tolist() == [
        f"{model}-{i}" for i in range(3)]


def test_recent_samples_take_the_latest_rows_of_each_window(store: Store, model: str) -> None:
    for i in range(10):
        log_one(store, model, 1, T0 + i, score=i / 10, latency=1.0, label=float(i % 2))
    latest, labeled = store.recent_samples(model, [(1, T0, T0 + 5), (1, T0 + 5, T0 + 10)],
                                           limit=3, labeled_only=True)
    assert latest["score"].round(1).tolist() == [0.4, 0.3, 0.2]
    assert labeled["label"].tolist() == [1.0, 0.0, 1.0]
    (unlabeled,) = store.recent_samples(model, [(1, T0, T0 + 10)], limit=2, labeled_only=False)
    assert unlabeled["label"].isna().all() and len(unlabeled) == 2


def test_class_probabilities_come_back_with_their_rows_and_labels(store: Store,
                                                                 model: str) -> None:
    """A multiclass model's (n, k) probabilities are kept per row, in class order, beside
    rows of a version that has none (a failed request) and an older batch layout."""
    from tether.outputs import model_scores, probability_columns

    proba = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25]]
    store.log_predictions([PredictionRecord(
        id=f"{model}-{i}", model_name=model, model_version=1, route="champion",
        features={"x": float(i)}, prediction=float(np.argmax(p)), proba=p, ts=T0 + i)
        for i, p in enumerate(proba)])
    store.log_predictions([PredictionRecord(
        id=f"{model}-failed", model_name=model, model_version=1, route="champion",
        features={"x": 9.0}, prediction=None, error=True, ts=T0 + 5)])
    store.add_feedback([(f"{model}-1", 2.0), (f"{model}-2", 0.0)])
    window = store.prediction_window(model)
    assert probability_columns(window) == ["proba:0", "proba:1", "proba:2"]
    assert window["x"].tolist() == [0.0, 1.0, 2.0, 9.0]  # features are not taken for classes
    kept = window[probability_columns(window)].to_numpy()
    assert np.allclose(kept[:3], proba, atol=1e-7) and np.isnan(kept[3]).all()
    assert model_scores(window) is None  # not every row has them
    labeled = store.prediction_window(model, labeled_only=True)
    assert labeled["label"].tolist() == [2.0, 0.0]
    assert np.allclose(model_scores(labeled), proba[1:], atol=1e-7)
    (sample,) = store.recent_samples(model, [(1, T0, T0 + 10)], limit=5, labeled_only=True)
    assert np.allclose(model_scores(sample), proba[:0:-1], atol=1e-7)  # newest first


def _five_columns(outputs: Outputs) -> bytes:
    """The outputs layout written before the model's CPU time was kept."""
    return np.stack([outputs.ts, outputs.prediction, outputs.score, outputs.latency_ms,
                     outputs.error]).astype("<f8").tobytes()


def test_model_cpu_time_and_batch_size_come_back_beside_older_rows(
        store: Store, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows the server logged with its model calls' CPU time and size keep them; rows of
    batches written in the older five-column layout, and rows written one at a time,
    read back with NaN for both."""
    def batch(ids: list[str], ts: float, cpu: list[float], rows: list[float]
              ) -> PredictionBatch:
        n = len(ids)
        return PredictionBatch(
            model_name=model, model_version=1, route="champion", ids=ids,
            features=pd.DataFrame({"x": np.arange(n, dtype=float)}),
            outputs=Outputs(ts=np.full(n, ts), prediction=np.ones(n),
                            score=np.full(n, 0.6), latency_ms=np.full(n, 9.0),
                            error=np.zeros(n, dtype=bool), model_cpu_ms=np.array(cpu),
                            batch_rows=np.array(rows)))

    with monkeypatch.context() as old_code:
        old_code.setattr(writes, "encode_outputs", _five_columns)
        store.log_batches([batch([f"{model}-old"], T0, [7.0], [1.0])])
    store.log_batches([batch([f"{model}-a", f"{model}-b", f"{model}-c"], T0 + 1,
                             [0.25, 0.25, 1.5], [2.0, 2.0, 1.0])])
    store.log_predictions([record(f"{model}-one", ts=T0 + 2, model=model, x=1.0)])
    window = store.prediction_window(model, features=False)
    assert window["id"].tolist() == [f"{model}-{s}" for s in ("old", "a", "b", "c", "one")]
    assert window["latency_ms"].tolist() == [9.0, 9.0, 9.0, 9.0, 2.0]
    cpu, rows = window["model_cpu_ms"].to_numpy(), window["batch_rows"].to_numpy()
    assert np.isnan(cpu[[0, 4]]).all() and np.isnan(rows[[0, 4]]).all()
    assert cpu[1:4].tolist() == [0.25, 0.25, 1.5] and rows[1:4].tolist() == [2.0, 2.0, 1.0]
