"""Totals as the database keeps them: each writer's own row per (model, width, period,
version), cached by the writer, packed, written and read back.

The vectors themselves (what they hold, how they add up) are in `totals`.
"""

from __future__ import annotations

import functools
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tether.errors import StoreError
from tether.store import totals
from tether.store.connection import Database, in_chunks

__all__ = ["FINE_TOTALS_DAYS", "TOTALS_WIDTHS", "TotalsCache", "TotalsKey", "pack",
           "read_kept", "totals_width", "unpack", "upsert"]

# Totals are kept per 5 s (the dashboard's finest bucket; windows up to a few hours) and
# per minute (longer windows read 12 times fewer rows).
TOTALS_WIDTHS = (5, 60)
FINE_TOTALS_DAYS = 7.0
CACHED_TOTALS = 4096
TotalsKey = tuple[str, int, int, int]  # model, width, period, version


class TotalsCache:
    """This writer's latest totals per (model, width, period, version): each write adds
    to them and stores the sum, so nobody else's row is ever read and rewritten."""

    def __init__(self, table: sa.Table, width: int) -> None:
        self.table = table
        self.width = width
        self.lock = threading.Lock()
        self._totals: OrderedDict[TotalsKey, np.ndarray] = OrderedDict()

    def added(self, conn: sa.Connection, writer: str, model: str, width: int,
              keys: Sequence[tuple[float, int]], delta: np.ndarray) -> dict[TotalsKey, np.ndarray]:
        """New totals for the keys (period start, version) plus `delta`; not yet kept."""
        wanted = [(model, width, round(start / width), version) for start, version in keys]
        missing = [key for key in wanted if key not in self._totals]
        stored = self._load(conn, writer, missing) if missing else {}
        updated: dict[TotalsKey, np.ndarray] = {}
        for key, row in zip(wanted, delta, strict=True):
            base = updated.get(key)
            if base is None:
                base = self._totals.get(key)
            if base is None:
                base = stored.get(key, np.zeros(self.width))
            updated[key] = base + row
        return updated

    def keep(self, updated: dict[TotalsKey, np.ndarray]) -> None:
        for key, vector in updated.items():
            self._totals[key] = vector
            self._totals.move_to_end(key)
        while len(self._totals) > CACHED_TOTALS:
            self._totals.popitem(last=False)

    def _load(self, conn: sa.Connection, writer: str, keys: list[TotalsKey],
              ) -> dict[TotalsKey, np.ndarray]:
        t = self.table
        found: dict[TotalsKey, np.ndarray] = {}
        by_group: dict[tuple[str, int, int], list[int]] = {}
        for model, width, period, version in keys:
            by_group.setdefault((model, width, version), []).append(period)
        for (model, width, version), periods in by_group.items():
            for chunk in in_chunks(periods):
                rows = conn.execute(sa.select(t.c.period, t.c.totals).where(
                    t.c.model_name == model, t.c.width == width,
                    t.c.model_version == version, t.c.writer == writer,
                    t.c.period.in_(chunk))).all()
                for period, blob in rows:
                    found[(model, width, int(period), version)] = unpack(blob, self.width)
        return found


def upsert(conn: sa.Connection, dialect: str, table: sa.Table, writer: str,
           updated: Mapping[TotalsKey, np.ndarray]) -> None:
    """Write this writer's new totals over its old ones."""
    if not updated:
        return
    rows = [{"model_name": model, "width": width, "period": period,
             "model_version": version, "writer": writer, "totals": pack(vector)}
            for (model, width, period, version), vector in updated.items()]
    if dialect in ("sqlite", "postgresql"):
        conn.execute(_upsert_statement(table, dialect), rows)
        return
    for row in rows:  # other databases: replace
        conn.execute(table.delete().where(*(
            table.c[name] == row[name]
            for name in ("model_name", "width", "period", "model_version", "writer"))))
    conn.execute(table.insert(), rows)


@functools.cache
def _upsert_statement(table: sa.Table, dialect: str) -> sa.Insert:
    """Built once per table: building it costs more than a one-row upsert in SQLite."""
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return insert.on_conflict_do_update(index_elements=keys,
                                        set_={"totals": insert.excluded.totals})


def read_kept(db: Database, table: sa.Table, size: int, model_name: str, period: int,
              since: float, width: float, until: float | None,
              ) -> tuple[list[tuple[float, int]], np.ndarray]:
    """Every writer's totals of `period`-second periods from `since` (the period that
    holds it counts whole) to `until`, summed per (bucket of `width`, version)."""
    query = sa.select(table.c.period, table.c.model_version, table.c.totals).where(
        table.c.model_name == model_name, table.c.width == period,
        table.c.period >= math.floor(since / period))
    if until is not None:
        query = query.where(table.c.period < math.ceil(until / period))
    with db.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return [], np.zeros((0, size))
    keys = [(math.floor(index * period / width) * width, int(version))
            for index, version, _ in rows]
    vectors = np.stack([unpack(blob, size) for _, _, blob in rows])
    return totals.merge(keys, vectors)


def totals_width(width: float) -> int | None:
    """The coarsest kept totals a bucket of `width` seconds is made of, if any."""
    if not width > 0:
        raise ValueError(f"bucket_seconds must be positive, got {width!r}")
    return next((w for w in reversed(TOTALS_WIDTHS) if width % w == 0), None)


def pack(totals: np.ndarray) -> bytes:
    """Totals are mostly empty histogram bins: compressed, a row is a few hundred bytes
    instead of kilobytes."""
    return zlib.compress(totals.astype("<f8").tobytes(), 1)


def unpack(blob: bytes, size: int) -> np.ndarray:
    totals = np.frombuffer(zlib.decompress(blob), dtype="<f8")
    if totals.size != size:
        raise StoreError(f"store: kept totals have {totals.size} fields, expected {size}; "
                         "the store was written by another version of tether")
    return totals
