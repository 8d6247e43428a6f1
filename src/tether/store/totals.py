"""Each writer's running totals: what it adds per (model, width, period, version).

The vectors themselves (what they hold, how they add up) are in `rollups`; here they
are cached, packed for the database and read back.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from tether.errors import StoreError
from tether.store.connection import in_chunks

__all__ = ["FINE_TOTALS_DAYS", "ROLLUP_WIDTHS", "TotalsCache", "TotalsKey", "pack",
           "totals_width", "unpack"]

# Totals are kept per 5 s (the dashboard's finest bucket; windows up to a few hours) and
# per minute (longer windows read 12 times fewer rows).
ROLLUP_WIDTHS = (5, 60)
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
        for key, totals in updated.items():
            self._totals[key] = totals
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


def totals_width(width: float) -> int | None:
    """The coarsest kept totals a bucket of `width` seconds is made of, if any."""
    if not width > 0:
        raise ValueError(f"bucket_seconds must be positive, got {width!r}")
    return next((w for w in reversed(ROLLUP_WIDTHS) if width % w == 0), None)


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
