"""Labels by prediction id: each stored beside what its prediction said, with this
writer's label totals, in one transaction."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import sqlalchemy as sa

from tether.store import totals
from tether.store.codec import Outputs, decode_outputs
from tether.store.connection import Database, in_chunks
from tether.store.kept_totals import TOTALS_WIDTHS, TotalsCache, TotalsKey, upsert
from tether.store.records import FeedbackResult
from tether.store.schema import batches, feedback, label_totals, prediction_ids

__all__ = ["LabelEncoder", "LabelWriter"]

# a label as a client sent it -> the number kept for it, given the version that made the
# prediction (a class as tether.classes keeps it); None leaves the label out. Raising
# (InputError) refuses the whole request: nothing is written.
LabelEncoder = Callable[[int, Any], float | None]

# what a replaced label took with it: model, version, prediction time, prediction, score,
# label
_Old = tuple[str, int, float, float | None, float | None, float]


class LabelWriter:
    """Writes labels and keeps this writer's label totals."""

    def __init__(self, db: Database, writer: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.writer = writer
        self.clock = clock  # what "now" is for a label's time (a replay's simulated time)
        self.cache = TotalsCache(label_totals, totals.LABEL_WIDTH)

    def add_feedback(self, labels: Iterable[tuple[str, Any]],
                     encode: LabelEncoder | None = None) -> FeedbackResult:
        pairs: dict[str, Any] = {str(pid): label if encode is not None else float(label)
                                 for pid, label in labels}
        if not pairs:
            return FeedbackResult(accepted=0, unknown_ids=[])
        now = self.clock()
        ids = list(pairs)
        cache = self.cache
        with cache.lock, self.db.begin() as conn:
            located: dict[str, tuple[int, int]] = {}
            previous: dict[str, _Old] = {}
            for chunk in in_chunks(ids):
                located.update((pid, (int(b), int(r))) for pid, b, r in conn.execute(
                    sa.select(prediction_ids.c.id, prediction_ids.c.batch_id,
                              prediction_ids.c.row).where(prediction_ids.c.id.in_(chunk))))
                previous.update((row[0], tuple(row[1:])) for row in conn.execute(
                    sa.select(feedback.c.prediction_id, feedback.c.model_name,
                              feedback.c.model_version, feedback.c.prediction_ts,
                              feedback.c.prediction, feedback.c.score, feedback.c.label)
                    .where(feedback.c.prediction_id.in_(chunk))))
            found = [pid for pid in ids if pid in located]
            rows = _label_rows(conn, found, located, pairs, now, encode)
            accepted = {row["prediction_id"] for row in rows}
            previous = {pid: old for pid, old in previous.items() if pid in accepted}
            for chunk in in_chunks(list(previous)):
                conn.execute(feedback.delete().where(feedback.c.prediction_id.in_(chunk)))
            if rows:
                conn.execute(feedback.insert(), rows)
            updated = self._totals(conn, rows, list(previous.values()))
            upsert(conn, self.db.dialect, label_totals, self.writer, updated)
        cache.keep(updated)
        return FeedbackResult(accepted=len(rows),
                              unknown_ids=[pid for pid in ids if pid not in located])

    def _totals(self, conn: sa.Connection, added: list[dict[str, Any]], removed: list[_Old],
                ) -> dict[TotalsKey, np.ndarray]:
        entries = [(r["model_name"], r["model_version"], r["prediction_ts"], r["prediction"],
                    r["score"], r["label"], 1.0) for r in added]
        entries += [(*old, -1.0) for old in removed]
        updated: dict[TotalsKey, np.ndarray] = {}
        for model in {e[0] for e in entries}:
            mine = [e[1:] for e in entries if e[0] == model]
            version, ts, prediction, score, label, sign = (
                np.array([np.nan if v is None else v for v in column], dtype=float)
                for column in zip(*mine, strict=True))
            for width in TOTALS_WIDTHS:
                groups, keys = totals.group_rows(ts, version.astype(np.int64), width)
                delta = np.zeros((len(keys), totals.LABEL_WIDTH))
                for s in (1.0, -1.0):
                    rows = sign == s
                    if rows.any():
                        delta += totals.sum_labels(groups[rows], len(keys),
                                                   prediction=prediction[rows],
                                                   score=score[rows], label=label[rows],
                                                   sign=s)
                updated.update(self.cache.added(conn, self.writer, model, width, keys, delta))
        return updated


def _label_rows(conn: sa.Connection, accepted: list[str],
                located: Mapping[str, tuple[int, int]], pairs: Mapping[str, Any],
                now: float, encode: LabelEncoder | None) -> list[dict[str, Any]]:
    batch_ids = sorted({located[pid][0] for pid in accepted})
    info: dict[int, tuple[str, int, str, Outputs]] = {}
    for chunk in in_chunks(batch_ids):
        for batch_id, model, version, route, n, blob in conn.execute(
                sa.select(batches.c.id, batches.c.model_name, batches.c.model_version,
                          batches.c.route, batches.c.rows, batches.c.outputs)
                .where(batches.c.id.in_(chunk))):
            info[batch_id] = (model, version, route, decode_outputs(blob, n))
    rows = []
    for pid in accepted:
        batch_id, row = located[pid]
        model, version, route, out = info[batch_id]
        label = pairs[pid] if encode is None else encode(int(version), pairs[pid])
        if label is None:
            continue
        rows.append({"prediction_id": pid, "label": float(label), "ts": now,
                     "model_name": model, "model_version": version, "route": route,
                     "batch_id": batch_id, "row": row,
                     "prediction_ts": float(out.ts[row]),
                     "prediction": _number(out.prediction[row]),
                     "score": _number(out.score[row])})
    return rows


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
