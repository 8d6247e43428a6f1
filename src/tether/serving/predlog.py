"""The prediction log: a bounded queue written to the store in batches by one thread.

The request path only appends an entry (ids, the validated rows, the outputs); turning
rows into feature dicts and writing them happens in the background thread. When the
queue is full, new entries are dropped and counted rather than slowing requests down.
`close()` writes everything still queued, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy.exc import IntegrityError

from tether.errors import TetherError
from tether.serving.metrics import ServingMetrics
from tether.serving.validation import Rows, row_count
from tether.store import Store

__all__ = ["LogEntry", "PredictionLog"]

log = logging.getLogger("tether.serving")


@dataclass(slots=True)
class LogEntry:
    """One request's predictions (or its failure) as the request path hands them over."""

    ids: Sequence[str]
    rows: Rows
    names: Sequence[str]
    version: int
    route: str
    latency_ms: float
    values: np.ndarray | None = None
    scores: np.ndarray | None = None
    error: bool = False
    ts: float = field(default_factory=time.time)

    def table_rows(self, model_name: str) -> list[dict[str, Any]]:
        """Rows for the store's predictions table, features encoded as JSON here: orjson
        on plain dicts is several times faster than the store's per-record json.dumps,
        and this runs once per logged row."""
        rows = self.rows
        if isinstance(rows, np.ndarray):
            names = list(self.names)
            features = [_encode(dict(zip(names, row, strict=True))) for row in rows.tolist()]
        else:
            features = [_encode(row) for row in rows.to_dict("records")]
        n = len(features)
        values = _floats(self.values, n)
        scores = _floats(self.scores, n)
        common = {"ts": self.ts, "model_name": model_name, "model_version": self.version,
                  "route": self.route, "latency_ms": self.latency_ms, "error": self.error}
        return [
            {"id": pid, "features": feature, "prediction": value, "score": score, **common}
            for pid, feature, value, score in zip(self.ids, features, values, scores,
                                                  strict=True)
        ]


def _encode(features: dict[str, Any]) -> str:
    return orjson.dumps(features, default=_plain,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _floats(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    try:
        return [float(v) for v in values.tolist()]
    except (TypeError, ValueError):  # string class labels: the store keeps numbers only
        return [None] * n


class PredictionLog:
    """Bounded, batched, background writes of predictions to the store."""

    def __init__(self, store: Store, model_name: str, metrics: ServingMetrics, *,
                 max_rows: int = 200_000, batch_rows: int = 5_000,
                 flush_seconds: float = 0.25) -> None:
        self.store = store
        self.model_name = model_name
        self.metrics = metrics
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self._queue: deque[LogEntry] = deque()
        self._depth = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def depth(self) -> int:
        return self._depth

    def put(self, entry: LogEntry) -> bool:
        n = row_count(entry.rows)
        with self._lock:
            if self._depth + n > self.max_rows:
                self.metrics.log_dropped.inc(n)
                return False
            self._queue.append(entry)
            self._depth += n
            depth = self._depth
        self.metrics.log_queue_depth.set(depth)
        if depth >= self.batch_rows:
            self._wake.set()
        return True

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="tether-predlog",
                                            daemon=True)
            self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Stop the thread after it has written everything queued."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()

    def flush(self) -> int:
        """Write everything queued now, in the calling thread; returns rows written."""
        written = 0
        while True:
            # taking and writing under one lock: a flush that returns has seen every
            # entry queued before it began written (feedback relies on that)
            with self._write_lock:
                batch = self._take()
                if not batch:
                    return written
                written += self._write(batch)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def _take(self) -> list[LogEntry]:
        batch: list[LogEntry] = []
        rows = 0
        with self._lock:
            while self._queue and rows < self.batch_rows:
                entry = self._queue.popleft()
                batch.append(entry)
                rows += row_count(entry.rows)
        return batch

    def _write(self, batch: list[LogEntry]) -> int:
        records = [row for entry in batch for row in entry.table_rows(self.model_name)]
        try:
            self.store.log_prediction_rows(records)
            written = len(records)
        except TetherError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                log.warning("prediction log: %d rows lost: %s", len(records), exc)
                self.metrics.log_dropped.inc(len(records))
                return self._settle(batch, 0)
            written = self._write_one_by_one(records)
        self.metrics.log_written.inc(written)
        return self._settle(batch, written)

    def _write_one_by_one(self, records: list[dict[str, Any]]) -> int:
        """A reused prediction id fails the whole insert: keep every row but those."""
        written = 0
        for record in records:
            try:
                self.store.log_prediction_rows([record])
                written += 1
            except TetherError as exc:
                log.warning("prediction log: row %s lost: %s", record["id"], exc)
                self.metrics.log_dropped.inc()
        return written

    def _settle(self, batch: list[LogEntry], written: int) -> int:
        with self._lock:
            self._depth -= sum(row_count(entry.rows) for entry in batch)
            depth = self._depth
        self.metrics.log_queue_depth.set(depth)
        return written
