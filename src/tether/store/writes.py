"""Writing predictions: batches, their features and ids, and the writer's traffic totals,
in one transaction."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tether.errors import StoreError
from tether.store import totals
from tether.store.codec import Outputs, encode_features, encode_ids, encode_outputs
from tether.store.connection import Database, in_chunks, paramstyle_marker
from tether.store.kept_totals import TOTALS_WIDTHS, TotalsCache, TotalsKey, upsert
from tether.store.records import LogResult, PredictionBatch, PredictionRecord
from tether.store.schema import batch_features, batches, prediction_ids, traffic_totals

__all__ = ["PredictionWriter"]

INSERT_BATCH = batches.insert()
INSERT_FEATURES = batch_features.insert()


class PredictionWriter:
    """Writes predictions and keeps this writer's traffic totals."""

    def __init__(self, db: Database, writer: str) -> None:
        self.db = db
        self.writer = writer
        self.cache = TotalsCache(traffic_totals, totals.TRAFFIC_WIDTH)

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        groups: dict[tuple[str, int, str, tuple[str, ...]], list[PredictionRecord]] = {}
        for record in records:
            key = (record.model_name, record.model_version, record.route,
                   tuple(record.features))
            groups.setdefault(key, []).append(record)
        self.log_batches([PredictionBatch.of_records(group) for group in groups.values()],
                         skip_duplicates=False)

    def log_batches(self, pending: Sequence[PredictionBatch], *,
                    skip_duplicates: bool = True) -> LogResult:
        pending = [b for b in pending if len(b)]
        if not pending:
            return LogResult(written=0, duplicate_ids=[])
        try:
            return LogResult(written=self._write(pending), duplicate_ids=[])
        except StoreError as exc:
            if not skip_duplicates or not isinstance(exc.__cause__, IntegrityError):
                raise
        duplicates = self._duplicates(pending)
        kept = [b.without(duplicates) for b in pending]
        return LogResult(written=self._write([b for b in kept if len(b)]),
                         duplicate_ids=sorted(duplicates))

    def _write(self, pending: Sequence[PredictionBatch]) -> int:
        if not pending:
            return 0
        # encoding and totals first: the transaction (SQLite's one write lock) only writes
        encoded = [(batch, encode_ids(batch.ids) if batch.ids is not None else "",
                    encode_outputs(batch.outputs), encode_features(batch.features))
                   for batch in pending]
        deltas = []
        for model in {b.model_name for b in pending}:
            mine = [b for b in pending if b.model_name == model]
            out = Outputs.concat([b.outputs for b in mine])
            versions = np.concatenate([np.full(len(b), b.model_version) for b in mine])
            for width in TOTALS_WIDTHS:
                groups, keys = totals.group_rows(out.ts, versions, width)
                deltas.append((model, width, keys, totals.sum_traffic(
                    groups, len(keys), latency_ms=out.latency_ms, error=out.error,
                    score=out.score)))
        marker = paramstyle_marker(self.db.engine)
        id_insert = (f"INSERT INTO {prediction_ids.name} (id, batch_id, row) "
                     f"VALUES ({marker}, {marker}, {marker})")
        cache = self.cache
        with cache.lock, self.db.begin() as conn:
            for batch, ids, outputs, features in encoded:
                # statements built once, values as parameters: building `.values(...)`
                # per batch cost more than SQLite's insert of a one-row batch
                (batch_id,) = conn.execute(INSERT_BATCH, {
                    "model_name": batch.model_name, "model_version": batch.model_version,
                    "route": batch.route, "ts_min": float(batch.outputs.ts.min()),
                    "ts_max": float(batch.outputs.ts.max()), "rows": len(batch), "ids": ids,
                    "outputs": outputs}).inserted_primary_key or (None,)
                conn.execute(INSERT_FEATURES, {"batch_id": batch_id, "data": features})
                if batch.ids is not None:
                    # a driver-level executemany: per row, SQLAlchemy's parameter handling
                    # would cost more than the insert itself
                    conn.exec_driver_sql(id_insert, list(zip(
                        batch.ids, itertools.repeat(batch_id), range(len(batch)))))
            updated: dict[TotalsKey, np.ndarray] = {}
            for model, width, keys, delta in deltas:
                updated.update(cache.added(conn, self.writer, model, width, keys, delta))
            upsert(conn, self.db.dialect, traffic_totals, self.writer, updated)
        cache.keep(updated)
        return sum(len(b) for b in pending)

    def _duplicates(self, pending: Sequence[PredictionBatch]) -> set[str]:
        seen: set[str] = set()
        repeated: set[str] = set()
        for batch in pending:
            for pid in batch.ids or ():
                (repeated if pid in seen else seen).add(pid)
        with self.db.connect() as conn:
            for chunk in in_chunks(list(seen)):
                repeated.update(conn.execute(sa.select(prediction_ids.c.id).where(
                    prediction_ids.c.id.in_(chunk))).scalars())
        return repeated
