from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.errors import StoreError
from tether.store import Event, PredictionRecord, Store


def _record(pid: str, version: int = 1, route: str = "champion", ts: float | None = None,
            **features: object) -> PredictionRecord:
    return PredictionRecord(id=pid, model_name="m", model_version=version, route=route,
                            features=dict(features) or {"x": 1.5, "kind": "a"}, prediction=1.0,
                            score=0.7, latency_ms=2.0, ts=ts if ts is not None else time.time())


def test_window_joins_labels_and_spreads_features(store: Store) -> None:
    now = time.time()
    store.log_predictions([_record("a", ts=now - 2, x=1.0, kind="u"),
                           _record("b", ts=now - 1, x=2.0, kind="v"),
                           _record("c", version=2, route="canary", ts=now, x=3.0, kind="w")])
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


def test_feedback_is_idempotent_and_lists_unknown_ids(store: Store) -> None:
    store.log_predictions([_record("a"), _record("b")])
    first = store.add_feedback([("a", 1.0), ("zzz", 0.0)])
    assert (first.accepted, first.unknown_ids) == (1, ["zzz"])
    again = store.add_feedback([("a", 0.0), ("b", 1.0)])
    assert (again.accepted, again.unknown_ids) == (2, [])
    labels = store.prediction_window("m", labeled_only=True).set_index("id")["label"]
    assert labels.to_dict() == {"a": 0.0, "b": 1.0}


def test_many_feedback_ids_in_one_call(store: Store) -> None:
    ids = [uuid.uuid4().hex for _ in range(1200)]
    store.log_predictions([_record(pid) for pid in ids])
    result = store.add_feedback([(pid, 1.0) for pid in ids] + [("missing", 1.0)])
    assert result.accepted == 1200
    assert result.unknown_ids == ["missing"]


def test_events_keep_order_and_numbers(store: Store) -> None:
    store.record_event(Event(model_name="m", kind="trained", version=1, data={"auc": 0.8}))
    store.record_event(Event(model_name="m", kind="promoted", version=1, reason="gate passed"))
    store.record_event(Event(model_name="other", kind="trained"))
    events = store.events("m")
    assert [e.kind for e in events] == ["trained", "promoted"]
    assert events[0].data == {"auc": 0.8}
    assert events[0].id is not None and events[1].id is not None
    assert events[0].id < events[1].id
    assert [e.kind for e in store.events("m", limit=1)] == ["promoted"]
    assert [e.kind for e in store.events("m", kinds=["trained"])] == ["trained"]


def test_lock_is_exclusive_until_released_or_expired(store: Store) -> None:
    assert store.acquire_lock("rollout", "one", ttl_seconds=30)
    assert not store.acquire_lock("rollout", "two", ttl_seconds=30)
    assert store.acquire_lock("rollout", "one", ttl_seconds=30)  # renewal
    assert store.lock_owner("rollout") == "one"
    store.release_lock("rollout", "one")
    assert store.acquire_lock("rollout", "two", ttl_seconds=0.01)
    time.sleep(0.05)
    assert store.lock_owner("rollout") is None
    assert store.acquire_lock("rollout", "one", ttl_seconds=30)


def test_duplicate_prediction_id_is_a_store_error(store: Store) -> None:
    store.log_predictions([_record("a")])
    with pytest.raises(StoreError):
        store.log_predictions([_record("a")])


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open"):
        Store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")


def test_tables_of_the_older_layout_are_named_in_a_warning(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE tether_predictions (id TEXT PRIMARY KEY)"))
    with caplog.at_level("WARNING", logger="tether.store"):
        Store(url).close()
    assert "tether_predictions" in caplog.text and "not read" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tether.store"):
        Store(f"sqlite:///{tmp_path / 'new.db'}").close()
    assert caplog.text == ""
