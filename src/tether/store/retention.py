"""Retention: old predictions go with their features, ids and labels; old kept totals
go on their own schedule, so the dashboard's history outlives the rows."""

from __future__ import annotations

import sqlalchemy as sa

from tether.store.codec import decode_ids
from tether.store.connection import CHUNK, Database, in_chunks
from tether.store.kept_totals import TOTALS_WIDTHS
from tether.store.records import PruneResult
from tether.store.schema import (
    batch_features,
    batches,
    feedback,
    label_totals,
    prediction_ids,
    traffic_totals,
)

__all__ = ["prune"]


def prune(db: Database, model_name: str, *, predictions_before: float | None = None,
          totals_before: float | None = None,
          fine_totals_before: float | None = None) -> PruneResult:
    batches_deleted = predictions_deleted = labels_deleted = totals_deleted = 0
    if predictions_before is not None:
        while True:
            with db.begin() as conn:
                chosen = conn.execute(
                    sa.select(batches.c.id, batches.c.ids, batches.c.rows)
                    .where(batches.c.model_name == model_name,
                           batches.c.ts_max < predictions_before)
                    .order_by(batches.c.ts_max).limit(CHUNK)).all()
                if not chosen:
                    break
                ids = [pid for _, text, _ in chosen if text for pid in decode_ids(text)]
                for chunk in in_chunks(ids):
                    conn.execute(prediction_ids.delete().where(
                        prediction_ids.c.id.in_(chunk)))
                    labels_deleted += conn.execute(feedback.delete().where(
                        feedback.c.prediction_id.in_(chunk))).rowcount
                numbers = [batch_id for batch_id, _, _ in chosen]
                conn.execute(batch_features.delete().where(
                    batch_features.c.batch_id.in_(numbers)))
                conn.execute(batches.delete().where(batches.c.id.in_(numbers)))
            batches_deleted += len(chosen)
            predictions_deleted += sum(int(n) for _, _, n in chosen)
    given = [t for t in (fine_totals_before, totals_before) if t is not None]
    cutoffs = {TOTALS_WIDTHS[0]: max(given) if given else None,
               TOTALS_WIDTHS[1]: totals_before}
    with db.begin() as conn:
        for width, before in cutoffs.items():
            if before is None:
                continue
            for table in (traffic_totals, label_totals):
                totals_deleted += conn.execute(table.delete().where(
                    table.c.model_name == model_name, table.c.width == width,
                    (table.c.period + 1) * table.c.width <= before)).rowcount
    return PruneResult(batches=batches_deleted, predictions=predictions_deleted,
                       labels=labels_deleted, totals=totals_deleted)
