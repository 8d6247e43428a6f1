"""The Store: predictions, labels, events and locks in one database (SQLAlchemy Core)."""

from __future__ import annotations

import itertools
import json
import math
import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tether.errors import StoreError
from tether.store import rollups
from tether.store.codec import (
    Outputs,
    decode_feature_table,
    decode_ids,
    decode_outputs,
    encode_features,
    encode_ids,
    encode_outputs,
)
from tether.store.connection import (
    CHUNK,
    Translated,
    first_line,
    in_chunks,
    open_engine,
    paramstyle_marker,
    safe_url,
    warn_about_old_tables,
)
from tether.store.records import (
    Event,
    FeedbackResult,
    LogResult,
    PredictionBatch,
    PredictionRecord,
    PruneResult,
)
from tether.store.rollups import LabelBucket, ScoreBin, TrafficBucket
from tether.store.schema import (
    batch_features,
    batches,
    events,
    feedback,
    label_rollups,
    locks,
    metadata,
    prediction_ids,
    traffic_rollups,
)
from tether.store.sites import SiteSummary, insert_summaries, latest_summaries
from tether.store.totals import (
    ROLLUP_WIDTHS,
    TotalsCache,
    TotalsKey,
    pack,
    totals_width,
    unpack,
)

__all__ = ["Store"]


@dataclass(slots=True)
class _Part:
    """Chosen rows of one stored batch."""

    batch_id: int
    version: int
    route: str
    ids: list[str]
    outputs: Outputs
    index: np.ndarray


class Store:
    """Predictions, labels, events and locks in one database."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.writer = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self._traffic = TotalsCache(traffic_rollups, rollups.TRAFFIC_WIDTH)
        self._labels = TotalsCache(label_rollups, rollups.LABEL_WIDTH)
        try:
            self.engine = open_engine(url)
            if create:
                metadata.create_all(self.engine)
                warn_about_old_tables(self.engine)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"store {safe_url(url)}: cannot open ({exc.__class__.__name__}: "
                             f"{first_line(exc)})") from exc

    def close(self) -> None:
        self.engine.dispose()

    @property
    def concurrent_reads(self) -> bool:
        """False for in-memory SQLite, whose one shared connection must not run two
        queries at once; True for a file or a server."""
        return not isinstance(self.engine.pool, StaticPool)

    # writing predictions -----------------------------------------------------------

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        """Write predictions given one by one; a reused id fails the whole call."""
        groups: dict[tuple[str, int, str, tuple[str, ...]], list[PredictionRecord]] = {}
        for record in records:
            key = (record.model_name, record.model_version, record.route,
                   tuple(record.features))
            groups.setdefault(key, []).append(record)
        self.log_batches([PredictionBatch.of_records(group) for group in groups.values()],
                         skip_duplicates=False)

    def log_batches(self, batches_: Sequence[PredictionBatch], *,
                    skip_duplicates: bool = True) -> LogResult:
        """Write batches of predictions in one transaction, with this writer's traffic
        totals. With `skip_duplicates`, rows whose id is already stored (or repeated)
        are left out and listed; without, a reused id is a StoreError."""
        pending = [b for b in batches_ if len(b)]
        if not pending:
            return LogResult(written=0, duplicate_ids=[])
        try:
            return LogResult(written=self._write_batches(pending), duplicate_ids=[])
        except StoreError as exc:
            if not skip_duplicates or not isinstance(exc.__cause__, IntegrityError):
                raise
        duplicates = self._duplicates(pending)
        kept = [b.without(duplicates) for b in pending]
        return LogResult(written=self._write_batches([b for b in kept if len(b)]),
                         duplicate_ids=sorted(duplicates))

    def _write_batches(self, pending: Sequence[PredictionBatch]) -> int:
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
            for width in ROLLUP_WIDTHS:
                groups, keys = rollups.group_rows(out.ts, versions, width)
                deltas.append((model, width, keys, rollups.traffic_totals(
                    groups, len(keys), latency_ms=out.latency_ms, error=out.error,
                    score=out.score)))
        marker = paramstyle_marker(self.engine)
        id_insert = (f"INSERT INTO {prediction_ids.name} (id, batch_id, row) "
                     f"VALUES ({marker}, {marker}, {marker})")
        cache = self._traffic
        with cache.lock, self._begin() as conn:
            for batch, ids, outputs, features in encoded:
                (batch_id,) = conn.execute(batches.insert().values(
                    model_name=batch.model_name, model_version=batch.model_version,
                    route=batch.route, ts_min=float(batch.outputs.ts.min()),
                    ts_max=float(batch.outputs.ts.max()), rows=len(batch), ids=ids,
                    outputs=outputs)).inserted_primary_key or (None,)
                conn.execute(batch_features.insert().values(batch_id=batch_id, data=features))
                if batch.ids is not None:
                    # a driver-level executemany: per row, SQLAlchemy's parameter handling
                    # would cost more than the insert itself
                    conn.exec_driver_sql(id_insert, list(zip(
                        batch.ids, itertools.repeat(batch_id), range(len(batch)))))
            updated: dict[TotalsKey, np.ndarray] = {}
            for model, width, keys, delta in deltas:
                updated.update(cache.added(conn, self.writer, model, width, keys, delta))
            self._upsert_rollups(conn, traffic_rollups, updated)
        cache.keep(updated)
        return sum(len(b) for b in pending)

    def _duplicates(self, pending: Sequence[PredictionBatch]) -> set[str]:
        seen: set[str] = set()
        repeated: set[str] = set()
        for batch in pending:
            for pid in batch.ids or ():
                (repeated if pid in seen else seen).add(pid)
        with self._connect() as conn:
            for chunk in in_chunks(list(seen)):
                repeated.update(conn.execute(sa.select(prediction_ids.c.id).where(
                    prediction_ids.c.id.in_(chunk))).scalars())
        return repeated

    def _upsert_rollups(self, conn: sa.Connection, table: sa.Table,
                        updated: Mapping[TotalsKey, np.ndarray]) -> None:
        if not updated:
            return
        rows = [{"model_name": model, "width": width, "period": period,
                 "model_version": version, "writer": self.writer, "totals": pack(totals)}
                for (model, width, period, version), totals in updated.items()]
        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = (sqlite.insert(table) if dialect == "sqlite"
                      else postgresql.insert(table))
            keys = [c.name for c in table.primary_key.columns]
            conn.execute(insert.on_conflict_do_update(
                index_elements=keys, set_={"totals": insert.excluded.totals}), rows)
            return
        for row in rows:  # other databases: replace
            conn.execute(table.delete().where(*(
                table.c[name] == row[name]
                for name in ("model_name", "width", "period", "model_version", "writer"))))
        conn.execute(table.insert(), rows)

    # reading predictions -----------------------------------------------------------

    def count_predictions(self, model_name: str, version: int | None = None,
                          route: str | None = None, since: float | None = None) -> int:
        whole = sa.select(sa.func.coalesce(sa.func.sum(batches.c.rows), 0)).where(
            *_batch_filters(model_name, version, route))
        if since is not None:
            whole = whole.where(batches.c.ts_min >= since)
        with self._connect() as conn:
            count = int(conn.execute(whole).scalar_one())
            if since is not None:  # batches that straddle `since`: count their rows
                straddling = conn.execute(
                    sa.select(batches.c.rows, batches.c.outputs).where(
                        *_batch_filters(model_name, version, route),
                        batches.c.ts_min < since, batches.c.ts_max >= since)).all()
                count += sum(int((decode_outputs(blob, n).ts >= since).sum())
                             for n, blob in straddling)
        return count

    def prediction_window(self, model_name: str, *, version: int | None = None,
                          route: str | None = None, since: float | None = None,
                          limit: int | None = None, labeled_only: bool = False,
                          features: bool = True, until: float | None = None) -> pd.DataFrame:
        """The most recent predictions (oldest first), joined to their labels.

        Columns: id, ts, model_version, route, prediction, score, latency_ms, error,
        label (NaN when none yet), and one column per feature (unless `features=False`).
        """
        with self._connect() as conn:
            if labeled_only:
                parts, labels = self._labeled_parts(conn, model_name, version, route, since,
                                                    until, limit)
            else:
                parts = self._recent_parts(conn, model_name, version, route, since, until,
                                           limit)
                labels = self._labels_for(conn, model_name, version, parts)
            frame = _frame(parts, labels)
            if limit is not None and len(frame) > limit:
                keep = frame.index[-limit:]
                frame = frame.loc[keep]
            if features and not frame.empty:
                frame = self._with_features(conn, frame, parts)
        return frame.drop(columns="_position").reset_index(drop=True)

    def _recent_parts(self, conn: sa.Connection, model_name: str, version: int | None,
                      route: str | None, since: float | None, until: float | None,
                      limit: int | None) -> list[_Part]:
        """Batches newest first until `limit` rows are found that no older batch can
        outrank (batches of several writers may overlap in time)."""
        query = (sa.select(batches.c.id, batches.c.model_version, batches.c.route,
                           batches.c.rows, batches.c.ts_max, batches.c.ids,
                           batches.c.outputs)
                 .where(*_batch_filters(model_name, version, route, since, until))
                 .order_by(batches.c.ts_max.desc()))
        parts: list[_Part] = []
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
            parts.append(_Part(batch_id, v, r, _ids(batch_id, ids, n), outputs, index))
            found += index.size
            if limit is not None and found >= limit:
                newest = np.concatenate([p.outputs.ts[p.index] for p in parts])
                threshold = float(np.partition(newest, newest.size - limit)[newest.size - limit])
        return parts

    def _labeled_parts(self, conn: sa.Connection, model_name: str, version: int | None,
                       route: str | None, since: float | None, until: float | None,
                       limit: int | None) -> tuple[list[_Part], dict[str, float]]:
        query = (sa.select(feedback.c.prediction_id, feedback.c.label, feedback.c.batch_id,
                           feedback.c.row)
                 .where(*_label_filters(model_name, version, route, since, until))
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
                parts.append(_Part(batch_id, v, r, _ids(batch_id, ids, n),
                                   decode_outputs(blob, n), np.array(sorted(wanted[batch_id]))))
        return parts, labels

    def _labels_for(self, conn: sa.Connection, model_name: str, version: int | None,
                    parts: list[_Part]) -> dict[str, float]:
        """Labels of the chosen rows: one range over the labels' time index."""
        if not parts:
            return {}
        low = min(float(p.outputs.ts[p.index].min()) for p in parts)
        high = max(float(p.outputs.ts[p.index].max()) for p in parts)
        rows = conn.execute(sa.select(feedback.c.prediction_id, feedback.c.label).where(
            *_label_filters(model_name, version, None, low, None),
            feedback.c.prediction_ts <= high)).all()
        return {pid: float(label) for pid, label in rows}

    def _with_features(self, conn: sa.Connection, frame: pd.DataFrame,
                       parts: list[_Part]) -> pd.DataFrame:
        """The frame with its rows' features beside it. Arrow tables of the batches are
        cut and joined before one conversion to pandas: per batch, a pandas step would
        cost more than the decoding."""
        blobs: dict[int, bytes] = {}
        for chunk in in_chunks([p.batch_id for p in parts]):
            blobs.update((int(batch_id), data) for batch_id, data in conn.execute(
                sa.select(batch_features.c.batch_id, batch_features.c.data)
                .where(batch_features.c.batch_id.in_(chunk))))
        tables = [decode_feature_table(blobs[p.batch_id]).take(pa.array(p.index))
                  for p in parts]
        table = pa.concat_tables(tables, promote_options="permissive")
        features = table.take(pa.array(frame["_position"].to_numpy())).to_pandas(
            use_threads=False)
        features.index = frame.index
        return pd.concat([frame, features], axis=1)

    def recent_samples(self, model_name: str, windows: Sequence[tuple[int, float, float]], *,
                       limit: int, labeled_only: bool) -> list[pd.DataFrame]:
        """For each (version, start, end): its latest `limit` predictions in [start, end).

        Columns prediction, score, label (None unless `labeled_only`). For metrics the
        totals cannot give (log loss, R2): each bucket costs at most `limit` rows.
        """
        frames: list[pd.DataFrame] = []
        columns = ["prediction", "score", "label"]
        with self._connect() as conn:
            for version, start, end in windows:
                if labeled_only:
                    query = (sa.select(feedback.c.prediction, feedback.c.score, feedback.c.label)
                             .where(*_label_filters(model_name, version, None, start, end))
                             .order_by(feedback.c.prediction_ts.desc()).limit(limit))
                    frames.append(pd.DataFrame.from_records(conn.execute(query).all(),
                                                            columns=columns))
                    continue
                frame = _frame(self._recent_parts(conn, model_name, version, None, start, end,
                                                  limit), {})
                frames.append(frame.iloc[-limit:][columns[:2]].assign(label=None)
                              .reset_index(drop=True))
        return frames

    # dashboard aggregates: kept totals, or the rows for other bucket widths --------

    def traffic_buckets(self, model_name: str, *, since: float, bucket_seconds: float,
                        until: float | None = None) -> list[TrafficBucket]:
        """Request count, errors, p99 and mean latency, mean confidence per (bucket, version).

        Buckets of whole minutes (or of whole 5 s) add up the writers' totals (the period
        that holds `since` counts whole); other widths aggregate the window's rows.
        """
        keys, totals = self._traffic_totals(model_name, since, bucket_seconds, until)
        return rollups.traffic_buckets(keys, totals)

    def label_buckets(self, model_name: str, *, since: float, bucket_seconds: float,
                      until: float | None = None) -> list[LabelBucket]:
        """Labeled predictions per (bucket of prediction time, version), with confusion
        counts and error sums."""
        keys, totals = self._label_totals(model_name, since, bucket_seconds, until)
        return rollups.label_buckets(keys, totals)

    def score_histogram(self, model_name: str, *, since: float, bucket_seconds: float,
                        until: float | None = None, labeled: bool) -> list[ScoreBin]:
        """Scores per (bucket, version, score bin): all predictions, or only labeled ones
        with their positive and negative counts. Enough for ROC AUC and confidence-based
        estimates without reading a row into Python."""
        if labeled:
            keys, totals = self._label_totals(model_name, since, bucket_seconds, until)
        else:
            keys, totals = self._traffic_totals(model_name, since, bucket_seconds, until)
        return rollups.score_bins(keys, totals, labeled=labeled)

    def _traffic_totals(self, model_name: str, since: float, width: float,
                        until: float | None) -> tuple[list[tuple[float, int]], np.ndarray]:
        period = totals_width(width)
        if period is not None:
            return self._rolled_up(traffic_rollups, rollups.TRAFFIC_WIDTH, model_name, period,
                                   since, width, until)
        with self._connect() as conn:
            parts = self._recent_parts(conn, model_name, None, None, since, until, None)
        if not parts:
            return [], np.zeros((0, rollups.TRAFFIC_WIDTH))
        out = Outputs.concat([p.outputs.take(p.index) for p in parts])
        versions = np.concatenate([np.full(p.index.size, p.version) for p in parts])
        groups, keys = rollups.group_rows(out.ts, versions, width)
        return keys, rollups.traffic_totals(groups, len(keys), latency_ms=out.latency_ms,
                                            error=out.error, score=out.score)

    def _label_totals(self, model_name: str, since: float, width: float,
                      until: float | None) -> tuple[list[tuple[float, int]], np.ndarray]:
        period = totals_width(width)
        if period is not None:
            return self._rolled_up(label_rollups, rollups.LABEL_WIDTH, model_name, period,
                                   since, width, until)
        query = sa.select(feedback.c.prediction_ts, feedback.c.model_version,
                          feedback.c.prediction, feedback.c.score, feedback.c.label).where(
            *_label_filters(model_name, None, None, since, until))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return [], np.zeros((0, rollups.LABEL_WIDTH))
        ts, versions, prediction, score, label = (np.array(c, dtype=float) for c in zip(*rows,
                                                                                       strict=True))
        groups, keys = rollups.group_rows(ts, versions.astype(np.int64), width)
        return keys, rollups.label_totals(groups, len(keys), prediction=prediction,
                                          score=score, label=label)

    def _rolled_up(self, table: sa.Table, size: int, model_name: str, period: int,
                   since: float, width: float, until: float | None,
                   ) -> tuple[list[tuple[float, int]], np.ndarray]:
        query = sa.select(table.c.period, table.c.model_version, table.c.totals).where(
            table.c.model_name == model_name, table.c.width == period,
            table.c.period >= math.floor(since / period))
        if until is not None:
            query = query.where(table.c.period < math.ceil(until / period))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return [], np.zeros((0, size))
        keys = [(math.floor(index * period / width) * width, int(version))
                for index, version, _ in rows]
        totals = np.stack([unpack(blob, size) for _, _, blob in rows])
        return rollups.merge(keys, totals)

    # feedback ----------------------------------------------------------------------

    def add_feedback(self, labels: Iterable[tuple[str, float]]) -> FeedbackResult:
        """Record labels by prediction id. Idempotent: a repeated id keeps its latest
        label (the label totals take the old one away)."""
        pairs = {str(pid): float(label) for pid, label in labels}
        if not pairs:
            return FeedbackResult(accepted=0, unknown_ids=[])
        now = time.time()
        ids = list(pairs)
        cache = self._labels
        with cache.lock, self._begin() as conn:
            located: dict[str, tuple[int, int]] = {}
            previous: dict[str, tuple[str, int, float, float | None, float | None, float]] = {}
            for chunk in in_chunks(ids):
                located.update((pid, (int(b), int(r))) for pid, b, r in conn.execute(
                    sa.select(prediction_ids.c.id, prediction_ids.c.batch_id,
                              prediction_ids.c.row).where(prediction_ids.c.id.in_(chunk))))
                previous.update((row[0], tuple(row[1:])) for row in conn.execute(
                    sa.select(feedback.c.prediction_id, feedback.c.model_name,
                              feedback.c.model_version, feedback.c.prediction_ts,
                              feedback.c.prediction, feedback.c.score, feedback.c.label)
                    .where(feedback.c.prediction_id.in_(chunk))))
            accepted = [pid for pid in ids if pid in located]
            rows = self._label_rows(conn, accepted, located, pairs, now)
            for chunk in in_chunks(list(previous)):
                conn.execute(feedback.delete().where(feedback.c.prediction_id.in_(chunk)))
            if rows:
                conn.execute(feedback.insert(), rows)
            updated = self._label_rollups(conn, rows, list(previous.values()))
            self._upsert_rollups(conn, label_rollups, updated)
        cache.keep(updated)
        return FeedbackResult(accepted=len(accepted),
                              unknown_ids=[pid for pid in ids if pid not in located])

    def _label_rows(self, conn: sa.Connection, accepted: list[str],
                    located: Mapping[str, tuple[int, int]], pairs: Mapping[str, float],
                    now: float) -> list[dict[str, Any]]:
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
            rows.append({"prediction_id": pid, "label": pairs[pid], "ts": now,
                         "model_name": model, "model_version": version, "route": route,
                         "batch_id": batch_id, "row": row,
                         "prediction_ts": float(out.ts[row]),
                         "prediction": _number(out.prediction[row]),
                         "score": _number(out.score[row])})
        return rows

    def _label_rollups(self, conn: sa.Connection, added: list[dict[str, Any]],
                       removed: list[tuple[str, int, float, float | None, float | None, float]],
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
            for width in ROLLUP_WIDTHS:
                groups, keys = rollups.group_rows(ts, version.astype(np.int64), width)
                delta = np.zeros((len(keys), rollups.LABEL_WIDTH))
                for s in (1.0, -1.0):
                    rows = sign == s
                    if rows.any():
                        delta += rollups.label_totals(groups[rows], len(keys),
                                                      prediction=prediction[rows],
                                                      score=score[rows], label=label[rows],
                                                      sign=s)
                updated.update(self._labels.added(conn, self.writer, model, width, keys,
                                                  delta))
        return updated

    # retention ---------------------------------------------------------------------

    def prune(self, model_name: str, *, predictions_before: float | None = None,
              totals_before: float | None = None,
              fine_totals_before: float | None = None) -> PruneResult:
        """Delete batches whose newest prediction is older than `predictions_before`
        (with their features, ids and labels) and kept totals of periods that ended
        before `totals_before`. The totals of pruned predictions stay until then, so the
        dashboard's history outlives the rows. Totals per 5 s go at `fine_totals_before`
        (or at `totals_before`, whichever deletes more)."""
        batches_deleted = predictions_deleted = labels_deleted = totals_deleted = 0
        if predictions_before is not None:
            while True:
                with self._begin() as conn:
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
        cutoffs = {ROLLUP_WIDTHS[0]: max(given) if given else None,
                   ROLLUP_WIDTHS[1]: totals_before}
        with self._begin() as conn:
            for width, before in cutoffs.items():
                if before is None:
                    continue
                for table in (traffic_rollups, label_rollups):
                    totals_deleted += conn.execute(table.delete().where(
                        table.c.model_name == model_name, table.c.width == width,
                        (table.c.period + 1) * table.c.width <= before)).rowcount
        return PruneResult(batches=batches_deleted, predictions=predictions_deleted,
                           labels=labels_deleted, totals=totals_deleted)

    # events ------------------------------------------------------------------------

    def record_event(self, event: Event) -> Event:
        with self._begin() as conn:
            result = conn.execute(events.insert().values(
                ts=event.ts, model_name=event.model_name, kind=event.kind,
                version=event.version, reason=event.reason,
                data=json.dumps(event.data, default=_jsonable, sort_keys=True)))
            (new_id,) = result.inserted_primary_key or (None,)
        return Event(model_name=event.model_name, kind=event.kind, reason=event.reason,
                     version=event.version, data=event.data, ts=event.ts, id=new_id)

    def events(self, model_name: str, *, kinds: Sequence[str] | None = None,
               since: float | None = None, limit: int | None = None) -> list[Event]:
        """Events oldest first; with `limit`, the most recent `limit` of them."""
        query = sa.select(events).where(events.c.model_name == model_name)
        if kinds:
            query = query.where(events.c.kind.in_(list(kinds)))
        if since is not None:
            query = query.where(events.c.ts >= since)
        query = query.order_by(events.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Event(id=row["id"], ts=row["ts"], model_name=row["model_name"], kind=row["kind"],
                  version=row["version"], reason=row["reason"], data=json.loads(row["data"]))
            for row in reversed(rows)
        ]

    # sites' data summaries (federated) ---------------------------------------------

    def record_site_summaries(self, summaries: Sequence[SiteSummary]) -> None:
        with self._begin() as conn:
            insert_summaries(conn, summaries)

    def site_summaries(self, model_name: str, *, since: float | None = None
                       ) -> list[SiteSummary]:
        """Each site's latest summary (reported at or after `since`)."""
        with self._connect() as conn:
            return latest_summaries(conn, model_name, since)

    # locks -------------------------------------------------------------------------

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew a named lease; False when another live owner holds it."""
        now = time.time()
        with self._begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires_at < now))
            updated = conn.execute(locks.update()
                                   .where(locks.c.name == name, locks.c.owner == owner)
                                   .values(expires_at=now + ttl_seconds))
            if updated.rowcount:
                return True
        try:
            with self._begin() as conn:
                conn.execute(locks.insert().values(name=name, owner=owner,
                                                   expires_at=now + ttl_seconds))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return False
            raise
        return True

    def release_lock(self, name: str, owner: str) -> None:
        with self._begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))

    def lock_owner(self, name: str) -> str | None:
        with self._connect() as conn:
            return conn.execute(sa.select(locks.c.owner).where(
                locks.c.name == name, locks.c.expires_at >= time.time())).scalar_one_or_none()

    # plumbing ----------------------------------------------------------------------

    def _connect(self) -> Translated:
        return Translated(self.engine, begin=False, url=self.url)

    def _begin(self) -> Translated:
        return Translated(self.engine, begin=True, url=self.url)


def _frame(parts: list[_Part], labels: Mapping[str, float]) -> pd.DataFrame:
    """The chosen rows as one frame, oldest first."""
    columns = ["id", "ts", "model_version", "route", "prediction", "score", "latency_ms",
               "error", "label", "_position"]
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
        "error": out.error,
        "label": np.array([labels.get(pid, np.nan) for pid in ids], dtype=float),
        "_position": np.arange(len(ids)),  # where the row's features sit, for features=True
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


def _label_filters(model_name: str, version: int | None, route: str | None,
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


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
