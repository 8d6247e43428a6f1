"""Labels by prediction id: idempotent, unknown ids listed, totals kept exact."""

from __future__ import annotations

import uuid

from tests.store.rows import T0, log_one, record
from tether.store import Store


def test_feedback_is_idempotent_and_lists_unknown_ids(store: Store) -> None:
    store.log_predictions([record("a"), record("b")])
    first = store.add_feedback([("a", 1.0), ("zzz", 0.0)])
    assert (first.accepted, first.unknown_ids) == (1, ["zzz"])
    again = store.add_feedback([("a", 0.0), ("b", 1.0)])
    assert (again.accepted, again.unknown_ids) == (2, [])
    labels = store.prediction_window("m", labeled_only=True).set_index("id")["label"]
    assert labels.to_dict() == {"a": 0.0, "b": 1.0}


def test_many_feedback_ids_in_one_call(store: Store) -> None:
    ids = [uuid.uuid4().hex for _ in range(1200)]
    store.log_predictions([record(pid) for pid in ids])
    result = store.add_feedback([(pid, 1.0) for pid in ids] + [("missing", 1.0)])
    assert result.accepted == 1200
    assert result.unknown_ids == ["missing"]


def test_a_changed_label_replaces_the_old_one_in_the_totals(store: Store, model: str) -> None:
    pid = log_one(store, model, 1, T0 + 1, score=0.9, latency=1.0)
    store.add_feedback([(pid, 0.0)])
    store.add_feedback([(pid, 1.0)])
    store.add_feedback([(pid, 1.0)])
    (bucket,) = store.label_buckets(model, since=T0, bucket_seconds=60)
    assert (bucket.labeled, bucket.true_positives, bucket.false_positives) == (1, 1, 0)
    for width in (30, 7):  # 5 s totals, then the rows
        (fine,) = store.label_buckets(model, since=T0, bucket_seconds=width)
        assert (fine.labeled, fine.true_positives) == (1, 1)
