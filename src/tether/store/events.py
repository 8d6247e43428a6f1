"""The event log: every decision, oldest first, with the numbers behind it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tether.store.connection import Database
from tether.store.records import Event
from tether.store.schema import events as table

__all__ = ["events", "record_event"]


def record_event(db: Database, event: Event) -> Event:
    with db.begin() as conn:
        result = conn.execute(table.insert().values(
            ts=event.ts, model_name=event.model_name, kind=event.kind, version=event.version,
            reason=event.reason, data=json.dumps(event.data, default=_jsonable,
                                                 sort_keys=True)))
        (new_id,) = result.inserted_primary_key or (None,)
    return Event(model_name=event.model_name, kind=event.kind, reason=event.reason,
                 version=event.version, data=event.data, ts=event.ts, id=new_id)


def events(db: Database, model_name: str, *, kinds: Sequence[str] | None = None,
           since: float | None = None, limit: int | None = None) -> list[Event]:
    query = sa.select(table).where(table.c.model_name == model_name)
    if kinds:
        query = query.where(table.c.kind.in_(list(kinds)))
    if since is not None:
        query = query.where(table.c.ts >= since)
    query = query.order_by(table.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with db.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        Event(id=row["id"], ts=row["ts"], model_name=row["model_name"], kind=row["kind"],
              version=row["version"], reason=row["reason"], data=json.loads(row["data"]))
        for row in reversed(rows)
    ]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
