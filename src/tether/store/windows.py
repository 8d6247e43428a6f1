"""Reading predictions back: windows of rows (newest first, joined to their labels and
features), counts and samples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tether.outputs import proba_column, probability_columns, window_column
from tether.store.codec import Outputs, decode_feature_table, decode_ids, decode_outputs
from tether.store.connection import Database, in_chunks
from tether.store.schema import batch_features, batches, feedback

__all__ = ["Part", "count_predictions", "label_filters", "prediction_window",
           "recent_parts", "recent_samples"]


@dataclass(slots=True)
class Part:
    """Chosen rows of one stored batch."""

    batch_id: int
    version: int
    route: str
    ids: list[str]
    outputs: Outputs
    index: np.ndarray


def count_predictions(db: Database, model_name: str, version: int | None = None,
                      route: str | None = None, since: float | None = None) -> int:
    whole = sa.select(sa.func.coalesce(sa.func.sum(batches.c.rows), 0)).where(
        *_batch_filters(model_name, version, route))
    if since is not None:
        whole = whole.where(batches.c.ts_min >= since)
    with db.connect() as conn:
        count = int(conn.execute(whole).scalar_one())
        if since is not None:  # batches that straddle `since`: count their rows
            straddling = conn.execute(
                sa.select(batches.c.rows, batches.c.outputs).where(
                    *_batch_filters(model_name, version, route),
                    batches.c.ts_min < since, batches.c.ts_max >= since)).all()
            count += sum(int((decode_outputs(blob, n).ts >= since).sum())
                         for n, blob in straddling)
    return count


def prediction_window(db: Database, model_name: str, *, version: int | None = None,
                      route: str | None = None, since: float | None = None,
                      limit: int | None = None, labeled_only: bool = False,
                      features: bool = True, until: float | None = None) -> pd.DataFrame:
    with db.connect() as conn:
        if labeled_only:
            parts, labels = _labeled_parts(conn, model_name, version, route, since, until,
                                           limit)
        else:
            parts = recent_parts(conn, model_name, version, route, since, until, limit)
            labels = _labels_for(conn, model_name, version, parts)
        frame = _frame(parts, labels)
        if limit is not None and len(frame) > limit:
            keep = frame.index[-limit:]
            frame = frame.loc[keep]
        if features and not frame.empty:
            frame = _with_features(conn, frame, parts)
    return frame.drop(columns="_position").reset_index(drop=True)


def recent_samples(db: Database, model_name: str,
                   windows: Sequence[tuple[int, float, float]], *, limit: int,
                   labeled_only: bool) -> list[pd.DataFrame]:
    frames: list[pd.DataFrame] = []
    columns = ["prediction", "score", "label"]
    with db.connect() as conn:
        for version, start, end in windows:
            if labeled_only:
                query = (sa.select(feedback.c.prediction, feedback.c.score, feedback.c.label,
                                   feedback.c.batch_id, feedback.c.row)
                         .where(*label_filters(model_name, version, None, start, end))
                         .order_by(feedback.c.prediction_ts.desc()).limit(limit))
                rows = [tuple(r) for r in conn.execute(query).all()]
                frame = pd.DataFrame.from_records([r[:3] for r in rows], columns=columns)
                frames.append(_with_probabilities(conn, frame, rows))
                continue
            frame = _frame(recent_parts(conn, model_name, version, None, start, end, limit),
                           {})
            # a multiclass model's class probabilities come along (its label-free estimate)
            kept = [*columns[:2], *probability_columns(frame)]
            frames.append(frame.iloc[-limit:][kept].assign(label=None)
                          .reset_index(drop=True))
    return frames


def _with_probabilities(conn: sa.Connection, frame: pd.DataFrame,
                        rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Labeled rows (prediction, score, label, batch id, row in the batch) with their
    class probabilities, read from their batches (a multiclass model's: the labels table
    keeps one score a row)."""
    wanted = sorted({int(r[3]) for r in rows})
    outputs: dict[int, Outputs] = {}
    for chunk in in_chunks(wanted):
        for batch_id, n, blob in conn.execute(
                sa.select(batches.c.id, batches.c.rows, batches.c.outputs)
                .where(batches.c.id.in_(chunk))):
            decoded = decode_outputs(blob, n)
            if decoded.proba is not None:
                outputs[int(batch_id)] = decoded
    if not outputs:
        return frame
    k = max(o.classes for o in outputs.values())
    proba = np.full((len(rows), k), np.nan)
    for i, r in enumerate(rows):
        found = outputs.get(int(r[3]))
        if found is not None and found.proba is not None:
            proba[i, :found.classes] = found.proba[int(r[4])]
    return frame.assign(**{proba_column(j): proba[:, j] for j in range(k)})


def recent_parts(conn: sa.Connection, model_name: str, version: int | None,
                 route: str | None, since: float | None, until: float | None,
                 limit: int | None) -> list[Part]:
    """Batches newest first until `limit` rows are found that no older batch can
    outrank (batches of several writers may overlap in time)."""
    query = (sa.select(batches.c.id, batches.c.model_version, batches.c.route,
                       batches.c.rows, batches.c.ts_max, batches.c.ids, batches.c.outputs)
             .where(*_batch_filters(model_name, version, route, since, until))
             .order_by(batches.c.ts_max.desc()))
    parts: list[Part] = []
    found = 0
    threshold = -math.inf
    for batch_id, v, r, n, ts_max, ids, blob in conn.execute(
            query.execution_options(yield_per=200)):
        if limit is not None and found >= limit and ts_max < threshold:
            break
        outputs = decode_outputs(blob, n)
        index = np.flatnonzero(_in_range(outputs.ts, since, until))
        if not index.size:
            continue
        parts.append(Part(batch_id, v, r, _ids(batch_id, ids, n), outputs, index))
        found += index.size
        if limit is not None and found >= limit:
            newest = np.concatenate([p.outputs.ts[p.index] for p in parts])
            threshold = float(np.partition(newest, newest.size - limit)[newest.size - limit])
    return parts


def _labeled_parts(conn: sa.Connection, model_name: str, version: int | None,
                   route: str | None, since: float | None, until: float | None,
                   limit: int | None) -> tuple[list[Part], dict[str, float]]:
    query = (sa.select(feedback.c.prediction_id, feedback.c.label, feedback.c.batch_id,
                       feedback.c.row)
             .where(*label_filters(model_name, version, route, since, until))
             .order_by(feedback.c.prediction_ts.desc()))
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    labels = {pid: float(label) for pid, label, _, _ in rows}
    wanted: dict[int, list[int]] = {}
    for _, _, batch_id, row in rows:
        wanted.setdefault(int(batch_id), []).append(int(row))
    parts = []
    for chunk in in_chunks(list(wanted)):
        for batch_id, v, r, n, ids, blob in conn.execute(
                sa.select(batches.c.id, batches.c.model_version, batches.c.route,
                          batches.c.rows, batches.c.ids, batches.c.outputs)
                .where(batches.c.id.in_(chunk))):
            parts.append(Part(batch_id, v, r, _ids(batch_id, ids, n),
                              decode_outputs(blob, n), np.array(sorted(wanted[batch_id]))))
    return parts, labels


def _labels_for(conn: sa.Connection, model_name: str, version: int | None,
                parts: list[Part]) -> dict[str, float]:
    """Labels of the chosen rows: one range over the labels' time index."""
    if not parts:
        return {}
    low = min(float(p.outputs.ts[p.index].min()) for p in parts)
    high = max(float(p.outputs.ts[p.index].max()) for p in parts)
    rows = conn.execute(sa.select(feedback.c.prediction_id, feedback.c.label).where(
        *label_filters(model_name, version, None, low, None),
        feedback.c.prediction_ts <= high)).all()
    return {pid: float(label) for pid, label in rows}


def _with_features(conn: sa.Connection, frame: pd.DataFrame,
                   parts: list[Part]) -> pd.DataFrame:
    """The frame with its rows' features beside it. Arrow tables of the batches are cut
    and joined before one conversion to pandas: per batch, a pandas step would cost more
    than the decoding."""
    blobs: dict[int, bytes] = {}
    for chunk in in_chunks([p.batch_id for p in parts]):
        blobs.update((int(batch_id), data) for batch_id, data in conn.execute(
            sa.select(batch_features.c.batch_id, batch_features.c.data)
            .where(batch_features.c.batch_id.in_(chunk))))
    tables = [decode_feature_table(blobs[p.batch_id]).take(pa.array(p.index)) for p in parts]
    table = pa.concat_tables(tables, promote_options="permissive")
    features = table.take(pa.array(frame["_position"].to_numpy())).to_pandas(
        use_threads=False)
    features.index = frame.index
    features.columns = [window_column(c) for c in features.columns]
    return pd.concat([frame, features], axis=1)


def _frame(parts: list[Part], labels: Mapping[str, float]) -> pd.DataFrame:
    """The chosen rows as one frame, oldest first."""
    columns = ["id", "ts", "model_version", "route", "prediction", "score", "latency_ms",
               "model_cpu_ms", "batch_rows", "error", "label", "_position"]
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in columns})
    ids = [p.ids[i] for p in parts for i in p.index.tolist()]
    out = Outputs.concat([p.outputs.take(p.index) for p in parts])
    frame = pd.DataFrame({
        "id": ids,
        "ts": out.ts,
        "model_version": np.concatenate([np.full(p.index.size, p.version) for p in parts]),
        "route": np.concatenate([np.full(p.index.size, p.route, dtype=object) for p in parts]),
        "prediction": out.prediction,
        "score": out.score,
        "latency_ms": out.latency_ms,
        "model_cpu_ms": out.model_cpu_ms,
        "batch_rows": out.batch_rows,
        "error": out.error,
        "label": np.array([labels.get(pid, np.nan) for pid in ids], dtype=float),
        "_position": np.arange(len(ids)),  # where the row's features sit, for features=True
        **({proba_column(i): out.proba[:, i] for i in range(out.classes)}
           if out.proba is not None else {}),
    })
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _filters(table: sa.Table, model_name: str, version: int | None, route: str | None,
             since: float | None, until: float | None, *, newest: sa.Column[float],
             oldest: sa.Column[float]) -> list[sa.ColumnElement[bool]]:
    """Rows of `table` for a model (and version, route) reaching into [since, until):
    whose `newest` time is at or after `since` and whose `oldest` is before `until`."""
    clauses = [table.c.model_name == model_name]
    if version is not None:
        clauses.append(table.c.model_version == version)
    if route is not None:
        clauses.append(table.c.route == route)
    if since is not None:
        clauses.append(newest >= since)
    if until is not None:
        clauses.append(oldest < until)
    return clauses


def _batch_filters(model_name: str, version: int | None, route: str | None,
                  since: float | None = None, until: float | None = None,
                  ) -> list[sa.ColumnElement[bool]]:
    return _filters(batches, model_name, version, route, since, until,
                    newest=batches.c.ts_max, oldest=batches.c.ts_min)


def label_filters(model_name: str, version: int | None, route: str | None,
                  since: float | None, until: float | None) -> list[sa.ColumnElement[bool]]:
    return _filters(feedback, model_name, version, route, since, until,
                    newest=feedback.c.prediction_ts, oldest=feedback.c.prediction_ts)


def _ids(batch_id: int, text: str, rows: int) -> list[str]:
    return decode_ids(text) if text else [f"@{batch_id}:{row}" for row in range(rows)]


def _in_range(ts: np.ndarray, since: float | None, until: float | None) -> np.ndarray:
    keep = np.ones(ts.shape, dtype=bool)
    if since is not None:
        keep &= ts >= since
    if until is not None:
        keep &= ts < until
    return keep
