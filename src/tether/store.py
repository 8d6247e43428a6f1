"""The one module that talks to the database: predictions, feedback, events, locks.

SQLAlchemy Core on any URL; a SQLite file by default, PostgreSQL at scale.

>>> store = Store("sqlite://")
>>> store.log_predictions([PredictionRecord(id="p1", model_name="m", model_version=1,
...     route="champion", features={"x": 1.0}, prediction=1.0, score=0.9)])
>>> store.add_feedback([("p1", 1.0), ("nope", 0.0)]).unknown_ids
['nope']
>>> store.prediction_window("m", labeled_only=True)[["id", "label", "x"]].to_dict("records")
[{'id': 'p1', 'label': 1.0, 'x': 1.0}]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tether.errors import StoreError

__all__ = [
    "LATENCY_BIN_GROWTH",
    "SCORE_BINS",
    "Event",
    "FeedbackResult",
    "LabelBucket",
    "PredictionRecord",
    "ScoreBin",
    "Store",
    "TrafficBucket",
]

metadata = sa.MetaData()

predictions = sa.Table(
    "tether_predictions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("prediction", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("latency_ms", sa.Float),
    sa.Column("error", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_predictions_model_version_ts", "model_name", "model_version", "ts"),
)
# Covers the dashboard's per-bucket aggregates, so they read the index, not the rows.
# Created apart from the table so that stores made before it get it too.
covering_index = sa.Index("ix_predictions_model_ts_covering", predictions.c.model_name,
                          predictions.c.ts, predictions.c.model_version, predictions.c.error,
                          predictions.c.latency_ms, predictions.c.score,
                          predictions.c.prediction)

feedback = sa.Table(
    "tether_feedback",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("label", sa.Float, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
)

events = sa.Table(
    "tether_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.Text, nullable=False, default="{}"),
)

locks = sa.Table(
    "tether_locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    id: str
    model_name: str
    model_version: int
    route: str
    features: dict[str, Any]
    prediction: float | None
    score: float | None = None
    latency_ms: float | None = None
    error: bool = False
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Event:
    model_name: str
    kind: str
    reason: str = ""
    version: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "model_name": self.model_name,
            "kind": self.kind,
            "version": self.version,
            "reason": self.reason,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    """Predictions of one version in one time bucket, aggregated in the database.

    `p99_latency_ms` is read from a latency histogram whose bins grow by
    `LATENCY_BIN_GROWTH`, interpolated inside the bin as Prometheus's
    `histogram_quantile` does: within that factor of the exact value.
    """

    start: float
    version: int
    requests: int
    errors: int
    p99_latency_ms: float | None
    mean_latency_ms: float | None
    mean_confidence: float | None


@dataclass(frozen=True, slots=True)
class ScoreBin:
    """Predictions of one version in one time bucket whose score falls in one of
    `SCORE_BINS` equal bins of [0, 1]; `positives`/`negatives` count labeled rows."""

    start: float
    version: int
    bin: int
    count: int
    score_sum: float
    positives: int
    negatives: int


@dataclass(frozen=True, slots=True)
class LabelBucket:
    """Labeled predictions of one version in one bucket (by prediction time), with the
    confusion counts for binary tasks and absolute/squared errors for regression."""

    start: float
    version: int
    labeled: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    sum_abs_error: float
    sum_squared_error: float


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    accepted: int
    unknown_ids: list[str]


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    """Predictions, feedback, events and locks in one database."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            if create:
                metadata.create_all(self.engine)
                covering_index.create(self.engine, checkfirst=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"store {_safe(url)}: cannot open ({exc.__class__.__name__}: "
                             f"{_first_line(exc)})") from exc

    def close(self) -> None:
        self.engine.dispose()

    @property
    def concurrent_reads(self) -> bool:
        """False for in-memory SQLite, whose one shared connection must not run two
        queries at once; True for a file or a server."""
        return not isinstance(self.engine.pool, StaticPool)

    # predictions -------------------------------------------------------------------

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        if not records:
            return
        rows = [
            {
                "id": r.id,
                "ts": r.ts,
                "model_name": r.model_name,
                "model_version": r.model_version,
                "route": r.route,
                "features": json.dumps(r.features, default=_jsonable),
                "prediction": r.prediction,
                "score": r.score,
                "latency_ms": r.latency_ms,
                "error": r.error,
            }
            for r in records
        ]
        with self._begin() as conn:
            conn.execute(predictions.insert(), rows)

    def log_prediction_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows already shaped like the predictions table, `features` already JSON
        text. The model server logs tens of thousands of rows a second: with a positional
        driver statement the per-row cost is the driver's, not SQLAlchemy's parameter
        processing (several times more)."""
        if not rows:
            return
        names = [column.name for column in predictions.columns]
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(
            self.engine.dialect.paramstyle)
        with self._begin() as conn:
            if marker is None:
                conn.execute(predictions.insert(), list(rows))
                return
            statement = (f"INSERT INTO {predictions.name} ({', '.join(names)}) "
                         f"VALUES ({', '.join([marker] * len(names))})")
            conn.exec_driver_sql(statement, [tuple(row[name] for name in names)
                                             for row in rows])

    def count_predictions(self, model_name: str, version: int | None = None,
                          route: str | None = None, since: float | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(predictions).where(
            *self._filters(model_name, version, route, since))
        with self._connect() as conn:
            return int(conn.execute(query).scalar_one())

    def prediction_window(self, model_name: str, *, version: int | None = None,
                          route: str | None = None, since: float | None = None,
                          limit: int | None = None, labeled_only: bool = False,
                          features: bool = True, until: float | None = None) -> pd.DataFrame:
        """The most recent predictions (oldest first), joined to their labels.

        Columns: id, ts, model_version, route, prediction, score, latency_ms, error,
        label (NaN when none yet), and one column per feature (unless `features=False`).
        """
        frame = self._window(model_name, version=version, route=route, since=since,
                             limit=limit, labeled_only=labeled_only, until=until)
        if frame.empty or not features:
            return frame.drop(columns=["features"])
        features = pd.DataFrame.from_records([json.loads(f) for f in frame["features"]],
                                             index=frame.index)
        return pd.concat([frame.drop(columns=["features"]), features], axis=1)

    def _window(self, model_name: str, *, version: int | None, route: str | None,
                since: float | None, limit: int | None, labeled_only: bool,
                until: float | None = None) -> pd.DataFrame:
        join = predictions.join(feedback, feedback.c.prediction_id == predictions.c.id,
                                isouter=not labeled_only)
        query = (
            sa.select(predictions.c.id, predictions.c.ts, predictions.c.model_version,
                      predictions.c.route, predictions.c.prediction, predictions.c.score,
                      predictions.c.latency_ms, predictions.c.error, feedback.c.label,
                      predictions.c.features)
            .select_from(join)
            .where(*self._filters(model_name, version, route, since, until))
            .order_by(predictions.c.ts.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self._connect() as conn:
            rows = conn.execute(query).all()
        columns = ["id", "ts", "model_version", "route", "prediction", "score", "latency_ms",
                   "error", "label", "features"]
        frame = pd.DataFrame.from_records(rows[::-1], columns=columns)
        frame["label"] = frame["label"].astype(float)
        return frame

    @staticmethod
    def _filters(model_name: str, version: int | None, route: str | None,
                 since: float | None, until: float | None = None
                 ) -> list[sa.ColumnElement[bool]]:
        clauses = [predictions.c.model_name == model_name]
        if version is not None:
            clauses.append(predictions.c.model_version == version)
        if route is not None:
            clauses.append(predictions.c.route == route)
        if since is not None:
            clauses.append(predictions.c.ts >= since)
        if until is not None:
            clauses.append(predictions.c.ts < until)
        return clauses

    # dashboard aggregates: computed in the database, bounded in size --------------

    def traffic_buckets(self, model_name: str, *, since: float, bucket_seconds: float,
                        until: float | None = None) -> list[TrafficBucket]:
        """Request count, errors, p99 and mean latency, mean confidence per (bucket, version).

        One GROUP BY over the covering index; what comes back is one row per bucket,
        version and latency bin, however many predictions the window holds.
        """
        _check_bucket(bucket_seconds)
        bucket = self._bucket(predictions.c.ts, bucket_seconds).label("bucket")
        latency_bin = self._latency_bin(predictions.c.latency_ms).label("bin")
        score = predictions.c.score
        confidence = sa.case((score >= 0.5, score), else_=1.0 - score)
        clauses = [predictions.c.model_name == model_name, predictions.c.ts >= since]
        if until is not None:
            clauses.append(predictions.c.ts < until)
        query = (
            sa.select(bucket, predictions.c.model_version, latency_bin, sa.func.count(),
                      sa.func.sum(sa.cast(predictions.c.error, sa.Integer)),
                      sa.func.sum(predictions.c.latency_ms),
                      sa.func.count(predictions.c.latency_ms),
                      sa.func.sum(confidence), sa.func.count(score))
            .where(*clauses)
            .group_by(sa.literal_column("bucket"), predictions.c.model_version,
                      sa.literal_column("bin"))
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        groups: dict[tuple[int, int], list[Any]] = {}
        for key, version, bin_index, count, errors, lat_sum, lat_n, conf_sum, conf_n in rows:
            group = groups.setdefault((int(key), int(version)), [0, 0, 0.0, 0, 0.0, 0, {}])
            group[0] += count
            group[1] += int(errors or 0)
            group[2] += float(lat_sum or 0.0)
            group[3] += lat_n
            group[4] += float(conf_sum or 0.0)
            group[5] += conf_n
            if bin_index is not None:
                group[6][int(bin_index)] = group[6].get(int(bin_index), 0) + lat_n
        return [
            TrafficBucket(start=key * bucket_seconds, version=version, requests=g[0], errors=g[1],
                          p99_latency_ms=_histogram_quantile(g[6], 0.99),
                          mean_latency_ms=g[2] / g[3] if g[3] else None,
                          mean_confidence=g[4] / g[5] if g[5] else None)
            for (key, version), g in sorted(groups.items())
        ]

    def label_buckets(self, model_name: str, *, since: float, bucket_seconds: float,
                      until: float | None = None) -> list[LabelBucket]:
        """Labeled predictions per (bucket of prediction time, version), with confusion counts.

        Reads from the label side: a label arrives after its prediction, so labels older
        than `since` are skipped by the index on `tether_feedback.ts`.
        """
        _check_bucket(bucket_seconds)
        bucket = self._bucket(predictions.c.ts, bucket_seconds).label("bucket")
        predicted = predictions.c.prediction >= 0.5
        actual = feedback.c.label >= 0.5
        error = predictions.c.prediction - feedback.c.label

        def count_when(condition: sa.ColumnElement[bool]) -> Any:
            return sa.func.sum(sa.case((condition, 1), else_=0))

        clauses = [predictions.c.model_name == model_name, predictions.c.ts >= since,
                   feedback.c.ts >= since]
        if until is not None:
            clauses.append(predictions.c.ts < until)
        query = (
            sa.select(bucket, predictions.c.model_version, sa.func.count(),
                      count_when(sa.and_(predicted, actual)),
                      count_when(sa.and_(predicted, sa.not_(actual))),
                      count_when(sa.and_(sa.not_(predicted), actual)),
                      count_when(sa.and_(sa.not_(predicted), sa.not_(actual))),
                      sa.func.sum(sa.func.abs(error)), sa.func.sum(error * error))
            .select_from(feedback.join(predictions, predictions.c.id == feedback.c.prediction_id))
            .where(*clauses)
            .group_by(sa.literal_column("bucket"), predictions.c.model_version)
            .order_by(sa.literal_column("bucket"), predictions.c.model_version)
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [
            LabelBucket(start=int(key) * bucket_seconds, version=int(version), labeled=count,
                        true_positives=int(tp or 0), false_positives=int(fp or 0),
                        false_negatives=int(fn or 0), true_negatives=int(tn or 0),
                        sum_abs_error=float(abs_sum or 0.0), sum_squared_error=float(sq or 0.0))
            for key, version, count, tp, fp, fn, tn, abs_sum, sq in rows
        ]

    def score_histogram(self, model_name: str, *, since: float, bucket_seconds: float,
                        until: float | None = None, labeled: bool) -> list[ScoreBin]:
        """Scores per (bucket, version, score bin): all predictions, or only labeled ones
        with their positive and negative counts. Enough for ROC AUC and confidence-based
        estimates without reading a row into Python."""
        _check_bucket(bucket_seconds)
        bucket = self._bucket(predictions.c.ts, bucket_seconds).label("bucket")
        score = predictions.c.score
        bins = sa.literal(SCORE_BINS, literal_execute=True)
        score_bin = sa.case((score >= 1.0, SCORE_BINS - 1), (score <= 0.0, 0),
                            else_=sa.cast(sa.func.floor(score * bins), sa.Integer)
                            if self.engine.dialect.name != "sqlite"
                            else sa.cast(score * bins, sa.Integer)).label("bin")
        clauses = [predictions.c.model_name == model_name, predictions.c.ts >= since,
                   score.is_not(None)]
        if until is not None:
            clauses.append(predictions.c.ts < until)
        if labeled:
            positives: Any = sa.func.sum(sa.case((feedback.c.label >= 0.5, 1), else_=0))
            source: sa.FromClause = feedback.join(
                predictions, predictions.c.id == feedback.c.prediction_id)
            clauses.append(feedback.c.ts >= since)
        else:
            positives, source = sa.literal(0), predictions
        query = (
            sa.select(bucket, predictions.c.model_version, score_bin, sa.func.count(),
                      sa.func.sum(score), positives)
            .select_from(source)
            .where(*clauses)
            .group_by(sa.literal_column("bucket"), predictions.c.model_version,
                      sa.literal_column("bin"))
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [
            ScoreBin(start=int(key) * bucket_seconds, version=int(version), bin=int(index),
                     count=int(count), score_sum=float(total or 0.0),
                     positives=int(pos or 0) if labeled else 0,
                     negatives=int(count) - int(pos or 0) if labeled else 0)
            for key, version, index, count, total, pos in rows
        ]

    def recent_samples(self, model_name: str, windows: Sequence[tuple[int, float, float]], *,
                       limit: int, labeled_only: bool) -> list[pd.DataFrame]:
        """For each (version, start, end): its latest `limit` predictions in [start, end).

        Columns prediction, score, label (None unless `labeled_only`). For metrics SQL
        cannot compute (ROC AUC, log loss, label-free estimates): each bucket costs at
        most `limit` rows.
        """
        frames: list[pd.DataFrame] = []
        if labeled_only:
            source: sa.FromClause = predictions.join(
                feedback, feedback.c.prediction_id == predictions.c.id)
            label: Any = feedback.c.label
        else:  # no join: the covering index answers alone
            source, label = predictions, sa.null()
        with self._connect() as conn:
            for version, start, end in windows:
                query = (
                    sa.select(predictions.c.prediction, predictions.c.score, label)
                    .select_from(source)
                    .where(predictions.c.model_name == model_name,
                           predictions.c.model_version == version,
                           predictions.c.ts >= start, predictions.c.ts < end)
                    .order_by(predictions.c.ts.desc())
                    .limit(limit)
                )
                frames.append(pd.DataFrame.from_records(
                    conn.execute(query).all(), columns=["prediction", "score", "label"]))
        return frames

    def _bucket(self, ts: sa.ColumnElement[float], seconds: float) -> sa.ColumnElement[int]:
        width = sa.literal(float(seconds), literal_execute=True)
        if self.engine.dialect.name == "sqlite":
            return sa.cast(ts / width, sa.BigInteger)  # truncation == floor for ts >= 0
        return sa.cast(sa.func.floor(ts / width), sa.BigInteger)

    def _latency_bin(self, latency: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
        """Index of the geometric latency bin: floor(ln(latency / MIN) / ln(GROWTH))."""
        floor_ms = sa.literal(_LATENCY_MIN_MS, literal_execute=True)
        step = sa.literal(math.log(LATENCY_BIN_GROWTH), literal_execute=True)
        if self.engine.dialect.name == "sqlite":
            if not self._sqlite_has_math:
                return _latency_bin_case(latency)
            clamped: sa.ColumnElement[float] = sa.func.max(latency, floor_ms)
        else:
            clamped = sa.func.greatest(latency, floor_ms)
        return sa.cast(sa.func.floor(sa.func.ln(clamped / floor_ms) / step), sa.Integer)

    @cached_property
    def _sqlite_has_math(self) -> bool:
        """SQLite has ln() only when built with its math functions (most builds are)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT ln(1.0)"))
        except SQLAlchemyError:
            return False
        return True

    # feedback ----------------------------------------------------------------------

    def add_feedback(self, labels: Iterable[tuple[str, float]]) -> FeedbackResult:
        """Record labels by prediction id. Idempotent: a repeated id keeps its latest label."""
        pairs = {str(pid): float(label) for pid, label in labels}
        if not pairs:
            return FeedbackResult(accepted=0, unknown_ids=[])
        now = time.time()
        with self._begin() as conn:
            known: set[str] = set()
            ids = list(pairs)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                known.update(conn.execute(
                    sa.select(predictions.c.id).where(predictions.c.id.in_(chunk))).scalars())
            accepted = [pid for pid in ids if pid in known]
            if accepted:
                conn.execute(feedback.delete().where(feedback.c.prediction_id.in_(accepted)))
                conn.execute(feedback.insert(), [
                    {"prediction_id": pid, "label": pairs[pid], "ts": now} for pid in accepted])
        return FeedbackResult(accepted=len(accepted),
                              unknown_ids=[pid for pid in ids if pid not in known])

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

    def _connect(self) -> _Translated:
        return _Translated(self.engine, begin=False, url=self.url)

    def _begin(self) -> _Translated:
        return _Translated(self.engine, begin=True, url=self.url)


class _Translated:
    """A connection whose SQLAlchemy errors come out as StoreError."""

    def __init__(self, engine: sa.Engine, *, begin: bool, url: str) -> None:
        self._engine = engine
        self._begin = begin
        self._url = url
        self._context: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self._context = self._engine.begin() if self._begin else self._engine.connect()
            return self._context.__enter__()
        except SQLAlchemyError as exc:
            raise StoreError(f"store {_safe(self._url)}: {_first_line(exc)}") from exc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._context.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise StoreError(f"store {_safe(self._url)}: {_first_line(error)}") from error
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"store {_safe(self._url)}: {_first_line(exc)}") from exc


SCORE_BINS = 100
_LATENCY_MIN_MS = 0.01
LATENCY_BIN_GROWTH = 1.1
_LATENCY_BINS = 200  # 0.01 ms * 1.1**200 is about 19 hours


def _check_bucket(seconds: float) -> None:
    if not seconds > 0:
        raise ValueError(f"bucket_seconds must be positive, got {seconds!r}")


def _latency_bin_edge(index: int) -> float:
    return _LATENCY_MIN_MS * LATENCY_BIN_GROWTH ** index


def _latency_bin_case(latency: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """The same bins without ln(), for SQLite builds that lack math functions."""
    whens = [(latency < _latency_bin_edge(i + 1), i) for i in range(_LATENCY_BINS)]
    return sa.case(*whens, else_=_LATENCY_BINS)


def _histogram_quantile(bins: dict[int, int], q: float) -> float | None:
    """The q-quantile of a geometric-bin histogram, linear inside the bin it falls in.

    >>> round(_histogram_quantile({0: 50, 10: 50}, 0.99), 4)
    0.0285
    >>> _histogram_quantile({}, 0.99) is None
    True
    """
    total = sum(bins.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(bins):
        count = bins[index]
        if seen + count >= rank:
            low, high = _latency_bin_edge(index), _latency_bin_edge(index + 1)
            return low + (high - low) * (rank - seen) / count
        seen += count
    return _latency_bin_edge(max(bins) + 1)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid url>"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
