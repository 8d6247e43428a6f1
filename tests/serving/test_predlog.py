"""The prediction log on its own: bounded queue, reused ids, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tether.errors import StoreError
from tether.serving.metrics import ServingMetrics
from tether.serving.predlog import LogEntry, PredictionLog
from tether.store import Store

NAMES = ["a", "b"]



def entry(ids: list[str], route: str = "champion") -> LogEntry:
    rows = np.arange(len(ids) * 2, dtype=float).reshape(len(ids), 2)
    return LogEntry(ids=ids, rows=rows, names=NAMES, version=3, route=route, latency_ms=1.5,
                    values=np.ones(len(ids), dtype=int), scores=np.full(len(ids), 0.75))


def test_rows_reach_the_store_with_features_and_outputs(store: Store) -> None:
    registry = CollectorRegistry()
    log = PredictionLog(store, "m", ServingMetrics(registry))
    log.put(entry(["p1", "p2"]))
    log.put(entry(["p3"], route="shadow"))
    assert log.flush() == 3
    window = store.prediction_window("m").sort_values("id")  # rows of one entry share ts
    assert window[["id", "route", "model_version", "prediction", "score", "a", "b"]].to_dict(
        "records") == [
        {"id": "p1", "route": "champion", "model_version": 3, "prediction": 1.0,
         "score": 0.75, "a": 0.0, "b": 1.0},
        {"id": "p2", "route": "champion", "model_version": 3, "prediction": 1.0,
         "score": 0.75, "a": 2.0, "b": 3.0},
        {"id": "p3", "route": "shadow", "model_version": 3, "prediction": 1.0,
         "score": 0.75, "a": 0.0, "b": 1.0},
    ]
    assert registry.get_sample_value("tether_prediction_log_written_total") == 3.0
    assert registry.get_sample_value("tether_prediction_log_queue_depth") == 0.0


def test_a_reused_id_loses_only_its_own_row(store: Store) -> None:
    registry = CollectorRegistry()
    log = PredictionLog(store, "m", ServingMetrics(registry))
    log.put(entry(["x1"]))
    log.flush()
    log.put(entry(["x2", "x1", "x3"]))
    assert log.flush() == 2
    assert sorted(store.prediction_window("m")["id"]) == ["x1", "x2", "x3"]
    assert registry.get_sample_value("tether_prediction_log_dropped_total") == 1.0


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    log = PredictionLog(Store(f"sqlite:///{tmp_path / 's.db'}"), "m",
                        ServingMetrics(registry), max_rows=3)
    assert log.put(entry(["a", "b"])) is True
    assert log.put(entry(["c", "d"])) is False
    assert registry.get_sample_value("tether_prediction_log_dropped_total") == 2.0
    assert registry.get_sample_value("tether_prediction_log_queue_depth") == 2.0
    log.close()
    assert log.store.count_predictions("m") == 2


def test_rows_without_ids_are_kept_but_cannot_be_labeled(store: Store) -> None:
    """MLflow's protocol answers without ids: its rows are logged, read back under
    `@<batch>:<row>`, and no label can name them."""
    log = PredictionLog(store, "m", ServingMetrics(CollectorRegistry()))
    anonymous = entry(["unused", "unused2"])
    anonymous.ids = None
    log.put(anonymous)
    log.put(entry(["named"]))
    assert log.flush() == 3
    window = store.prediction_window("m")
    assert sorted(window["id"])[2] == "named"
    unnamed = sorted(window["id"])[:2]
    assert all(pid.startswith("@") for pid in unnamed) and unnamed[0] != unnamed[1]
    assert window["a"].tolist() == [0.0, 2.0, 0.0]
    result = store.add_feedback([(unnamed[0], 1.0), ("named", 1.0)])
    assert (result.accepted, result.unknown_ids) == (1, [unnamed[0]])


def test_acked_entries_are_in_the_store_when_the_wait_returns(store: Store) -> None:
    """Group commit: many requests waiting at once share writes, and each returns only
    once its rows can be read back (and labeled)."""
    registry = CollectorRegistry()
    log = PredictionLog(store, "m", ServingMetrics(registry), flush_seconds=60.0)
    log.start()

    async def requests() -> None:
        await asyncio.gather(*(log.put_and_wait(entry([f"k{i}"])) for i in range(50)))
        assert store.add_feedback([(f"k{i}", 1.0) for i in range(50)]).unknown_ids == []

    try:
        asyncio.run(requests())  # the thread would wait 60 s for a batched write
    finally:
        log.close()
    assert registry.get_sample_value("tether_prediction_log_written_total") == 50.0


def test_an_acked_entry_the_store_cannot_write_raises_instead_of_returning(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    log = PredictionLog(store, "m", ServingMetrics(CollectorRegistry()))
    log.start()
    with sqlite3.connect(path) as connection:  # the store loses its table under the log
        connection.execute("DROP TABLE tether_prediction_ids")
    try:
        with pytest.raises(StoreError, match="the store did not write it"):
            asyncio.run(log.put_and_wait(entry(["lost"])))
        full = PredictionLog(store, "m", ServingMetrics(CollectorRegistry()), max_rows=1)
        with pytest.raises(StoreError, match=r"serving\.log_queue_rows"):
            asyncio.run(full.put_and_wait(entry(["a", "b"])))
    finally:
        log.close()


def test_model_cpu_time_and_batch_size_reach_the_store_and_failures_have_none(
        store: Store) -> None:
    log = PredictionLog(store, "m", ServingMetrics(CollectorRegistry()))
    served = entry(["c1", "c2"])
    served.model_cpu_ms, served.batch_rows = 0.75, 5.0
    failed = LogEntry(ids=["c3"], rows=np.zeros((1, 2)), names=NAMES, version=3,
                      route="champion", latency_ms=4.0, error=True)
    log.put(served)
    log.put(failed)
    assert log.flush() == 3
    window = store.prediction_window("m", features=False).set_index("id")
    assert window.loc[["c1", "c2"], "model_cpu_ms"].tolist() == [0.75, 0.75]
    assert window.loc[["c1", "c2"], "batch_rows"].tolist() == [5.0, 5.0]
    assert np.isnan(window.loc["c3", ["model_cpu_ms", "batch_rows"]].to_numpy(float)).all()
