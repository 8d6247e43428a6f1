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
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tether.errors import StoreError

__all__ = [
    "Event",
    "FeedbackResult",
    "PredictionRecord",
    "Store",
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
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"store {_safe(url)}: cannot open ({exc.__class__.__name__}: "
                             f"{_first_line(exc)})") from exc

    def close(self) -> None:
        self.engine.dispose()

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
