"""The event log keeps order and numbers."""

from __future__ import annotations

from tether.store import Event, Store


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
