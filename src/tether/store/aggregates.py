"""The dashboard's aggregates: per (bucket, version) traffic, labels and score histograms,
from the kept totals when the bucket is made of whole kept periods, else from the rows."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from tether.store import totals
from tether.store.codec import Outputs
from tether.store.connection import Database
from tether.store.kept_totals import read_kept, totals_width
from tether.store.schema import feedback, label_totals, traffic_totals
from tether.store.totals import LabelBucket, ScoreBin, TrafficBucket
from tether.store.windows import label_filters, recent_parts

__all__ = ["label_buckets", "score_histogram", "traffic_buckets"]

Keyed = tuple[list[tuple[float, int]], np.ndarray]


def traffic_buckets(db: Database, model_name: str, *, since: float, bucket_seconds: float,
                    until: float | None = None) -> list[TrafficBucket]:
    return totals.traffic_buckets(*_traffic(db, model_name, since, bucket_seconds, until))


def label_buckets(db: Database, model_name: str, *, since: float, bucket_seconds: float,
                  until: float | None = None) -> list[LabelBucket]:
    return totals.label_buckets(*_labels(db, model_name, since, bucket_seconds, until))


def score_histogram(db: Database, model_name: str, *, since: float, bucket_seconds: float,
                    until: float | None = None, labeled: bool) -> list[ScoreBin]:
    keys, vectors = (_labels if labeled else _traffic)(db, model_name, since, bucket_seconds,
                                                       until)
    return totals.score_bins(keys, vectors, labeled=labeled)


def _traffic(db: Database, model_name: str, since: float, width: float,
             until: float | None) -> Keyed:
    period = totals_width(width)
    if period is not None:
        return read_kept(db, traffic_totals, totals.TRAFFIC_WIDTH, model_name, period, since,
                         width, until)
    with db.connect() as conn:
        parts = recent_parts(conn, model_name, None, None, since, until, None)
    if not parts:
        return [], np.zeros((0, totals.TRAFFIC_WIDTH))
    out = Outputs.concat([p.outputs.take(p.index) for p in parts])
    versions = np.concatenate([np.full(p.index.size, p.version) for p in parts])
    groups, keys = totals.group_rows(out.ts, versions, width)
    return keys, totals.sum_traffic(groups, len(keys), latency_ms=out.latency_ms,
                                    error=out.error, score=out.score)


def _labels(db: Database, model_name: str, since: float, width: float,
            until: float | None) -> Keyed:
    period = totals_width(width)
    if period is not None:
        return read_kept(db, label_totals, totals.LABEL_WIDTH, model_name, period, since,
                         width, until)
    query = sa.select(feedback.c.prediction_ts, feedback.c.model_version,
                      feedback.c.prediction, feedback.c.score, feedback.c.label).where(
        *label_filters(model_name, None, None, since, until))
    with db.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return [], np.zeros((0, totals.LABEL_WIDTH))
    ts, versions, prediction, score, label = (np.array(c, dtype=float)
                                              for c in zip(*rows, strict=True))
    groups, keys = totals.group_rows(ts, versions.astype(np.int64), width)
    return keys, totals.sum_labels(groups, len(keys), prediction=prediction, score=score,
                                   label=label)
