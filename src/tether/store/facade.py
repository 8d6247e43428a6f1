"""The Store: one facade over the database's concerns, each in a module of its own.

```
writes.py      predictions in batches, with the writer's traffic totals
windows.py     windows of predictions joined to labels and features; counts; samples
aggregates.py  the dashboard's buckets, from kept totals or rows
labels.py      labels by prediction id, with the writer's label totals
events.py      the event log
locks.py       named leases
retention.py   pruning what the retention policy no longer keeps
sites.py       federated sites' data summaries
status.py      the controller's status, one document per model
```
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tether.errors import StoreError
from tether.store import aggregates, locks, retention, status
from tether.store import events as event_log
from tether.store import windows as reads
from tether.store.connection import Database, first_line, safe_url
from tether.store.labels import LabelEncoder, LabelWriter
from tether.store.records import (
    Event,
    FeedbackResult,
    LogResult,
    PredictionBatch,
    PredictionRecord,
    PruneResult,
)
from tether.store.schema import metadata
from tether.store.sites import SiteSummary, insert_summaries, latest_summaries
from tether.store.totals import LabelBucket, ScoreBin, TrafficBucket
from tether.store.writes import PredictionWriter

__all__ = ["Store"]


class Store:
    """Predictions, labels, totals, events, leases and the controller's status in one
    database (SQLAlchemy Core on any URL: a SQLite file by default, PostgreSQL at scale).
    Raises StoreError when the database fails."""

    def __init__(self, url: str, *, create: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        # what "now" is for label times and lease expiry (a replay moves its own clock)
        self.clock = clock
        # each Store keeps its own rows of totals: no two writers read-modify-write one row
        self.writer = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.db = Database(url)
        if create:
            try:
                metadata.create_all(self.db.engine)
            except SQLAlchemyError as exc:
                raise StoreError(f"store {safe_url(url)}: cannot open "
                                 f"({exc.__class__.__name__}: {first_line(exc)})") from exc
        self._predictions = PredictionWriter(self.db, self.writer)
        self._labels = LabelWriter(self.db, self.writer, clock)

    def close(self) -> None:
        self.db.engine.dispose()

    @property
    def concurrent_reads(self) -> bool:
        """False for in-memory SQLite, whose one shared connection must not run two
        queries at once; True for a file or a server."""
        return not isinstance(self.db.engine.pool, StaticPool)

    # writes ------------------------------------------------------------------------

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        """Write predictions given one by one; a reused id fails the whole call."""
        self._predictions.log_predictions(records)

    def log_batches(self, batches: Sequence[PredictionBatch], *,
                    skip_duplicates: bool = True) -> LogResult:
        """Write batches of predictions in one transaction, with this writer's traffic
        totals. With `skip_duplicates`, rows whose id is already stored (or repeated)
        are left out and listed; without, a reused id is a StoreError."""
        return self._predictions.log_batches(batches, skip_duplicates=skip_duplicates)

    # windows -----------------------------------------------------------------------

    def count_predictions(self, model_name: str, version: int | None = None,
                          route: str | None = None, since: float | None = None) -> int:
        return reads.count_predictions(self.db, model_name, version, route, since)

    def prediction_window(self, model_name: str, *, version: int | None = None,
                          route: str | None = None, since: float | None = None,
                          limit: int | None = None, labeled_only: bool = False,
                          features: bool = True, until: float | None = None) -> pd.DataFrame:
        """The most recent predictions (oldest first), joined to their labels.

        Columns: id, ts, model_version, route, prediction, score, latency_ms (served
        wall clock), model_cpu_ms and batch_rows (CPU time and rows of the model call
        that answered the row, NaN where unknown), error, label (NaN when none yet),
        and one column per feature (unless `features=False`).
        """
        return reads.prediction_window(
            self.db, model_name, version=version, route=route, since=since, limit=limit,
            labeled_only=labeled_only, features=features, until=until)

    def recent_samples(self, model_name: str, windows: Sequence[tuple[int, float, float]],
                       *, limit: int, labeled_only: bool) -> list[pd.DataFrame]:
        """For each (version, start, end): its latest `limit` predictions in [start, end).

        Columns prediction, score, label (None unless `labeled_only`), and a multiclass
        model's class probabilities `proba:0` ... `proba:{k-1}`. For metrics the totals
        cannot give (log loss, R2, multiclass): each bucket costs at most `limit` rows.
        """
        return reads.recent_samples(self.db, model_name, windows, limit=limit,
                                      labeled_only=labeled_only)

    # aggregates --------------------------------------------------------------------

    def traffic_buckets(self, model_name: str, *, since: float, bucket_seconds: float,
                        until: float | None = None) -> list[TrafficBucket]:
        """Request count, errors, p99 and mean latency, mean confidence per (bucket, version).

        Buckets of whole minutes (or of whole 5 s) add up the writers' totals (the period
        that holds `since` counts whole); other widths aggregate the window's rows.
        """
        return aggregates.traffic_buckets(self.db, model_name, since=since,
                                          bucket_seconds=bucket_seconds, until=until)

    def label_buckets(self, model_name: str, *, since: float, bucket_seconds: float,
                      until: float | None = None) -> list[LabelBucket]:
        """Labeled predictions per (bucket of prediction time, version), with confusion
        counts and error sums."""
        return aggregates.label_buckets(self.db, model_name, since=since,
                                        bucket_seconds=bucket_seconds, until=until)

    def score_histogram(self, model_name: str, *, since: float, bucket_seconds: float,
                        until: float | None = None, labeled: bool) -> list[ScoreBin]:
        """Scores per (bucket, version, score bin): all predictions, or only labeled ones
        with their positive and negative counts. Enough for ROC AUC and confidence-based
        estimates without reading a row into Python."""
        return aggregates.score_histogram(self.db, model_name, since=since,
                                          bucket_seconds=bucket_seconds, until=until,
                                          labeled=labeled)

    # labels ------------------------------------------------------------------------

    def add_feedback(self, labels: Iterable[tuple[str, Any]],
                     encode: LabelEncoder | None = None) -> FeedbackResult:
        """Record labels by prediction id. Idempotent: a repeated id keeps its latest
        label (the label totals take the old one away). Labels are numbers, or, with
        `encode(version, label)`, whatever it turns into the number to keep (a class's
        index) given the version that made the prediction; what it raises refuses the
        whole call and writes nothing."""
        return self._labels.add_feedback(labels, encode)

    # events ------------------------------------------------------------------------

    def record_event(self, event: Event) -> Event:
        """Append one event; returns it with its id."""
        return event_log.record_event(self.db, event)

    def events(self, model_name: str, *, kinds: Sequence[str] | None = None,
               since: float | None = None, limit: int | None = None) -> list[Event]:
        """Events oldest first; with `limit`, the most recent `limit` of them."""
        return event_log.events(self.db, model_name, kinds=kinds, since=since, limit=limit)

    # sites' data summaries (federated) ---------------------------------------------

    def record_site_summaries(self, summaries: Sequence[SiteSummary]) -> None:
        with self.db.begin() as conn:
            insert_summaries(conn, summaries)

    def site_summaries(self, model_name: str, *, since: float | None = None
                       ) -> list[SiteSummary]:
        """Each site's latest summary (reported at or after `since`)."""
        with self.db.connect() as conn:
            return latest_summaries(conn, model_name, since)

    # locks -------------------------------------------------------------------------

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew a named lease; False when another live owner holds it."""
        return locks.acquire_lock(self.db, name, owner, ttl_seconds, self.clock)

    def release_lock(self, name: str, owner: str) -> None:
        locks.release_lock(self.db, name, owner)

    def lock_owner(self, name: str) -> str | None:
        """Who holds `name` now, if anyone."""
        return locks.lock_owner(self.db, name, self.clock)

    def lease(self, name: str, owner: str, *, ttl_seconds: float,
              wait_seconds: float) -> AbstractContextManager[bool]:
        """Hold `name` for a `with` block, renewed while held; yields False when another
        owner kept it for `wait_seconds`."""
        return locks.lease(self.db, name, owner, ttl_seconds=ttl_seconds,
                           wait_seconds=wait_seconds, clock=self.clock)

    # the controller's status -------------------------------------------------------

    def save_status(self, model_name: str, document: Mapping[str, Any], *, ts: float,
                    owner: str) -> None:
        """Replace the controller's status of `model_name` (see `store.status`)."""
        status.write_status(self.db, model_name, document, ts=ts, owner=owner)

    def load_status(self, model_name: str) -> dict[str, Any] | None:
        """The controller's last status of `model_name`, or None before its first pass."""
        return status.read_status(self.db, model_name)

    # retention ---------------------------------------------------------------------

    def prune(self, model_name: str, *, predictions_before: float | None = None,
              totals_before: float | None = None,
              fine_totals_before: float | None = None) -> PruneResult:
        """Delete batches whose newest prediction is older than `predictions_before`
        (with their features, ids and labels) and kept totals of periods that ended
        before `totals_before`. The totals of pruned predictions stay until then, so the
        dashboard's history outlives the rows. Totals per 5 s go at `fine_totals_before`
        (or at `totals_before`, whichever deletes more)."""
        return retention.prune(self.db, model_name, predictions_before=predictions_before,
                               totals_before=totals_before,
                               fine_totals_before=fine_totals_before)
