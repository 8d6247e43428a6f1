"""The prediction log: a bounded queue written to the store in batches by one thread.

The request path only appends an entry (ids, the validated rows, the outputs); turning
entries into columnar batches and writing them happens in the background thread.

Two ways to queue (`serving.durability` picks per request: `acked` for every request,
`ids` for those whose answer carries prediction ids, `batched` for none):
- batched: `put()` returns at once; the thread writes every `flush_seconds` (or sooner
  when `batch_rows` are queued). A full queue drops new entries and counts them rather
  than slowing requests down. A crash loses what was queued and not yet written.
- acked: `put_and_wait()` returns once the entry is committed. Entries that arrive while
  a write runs go into the next one (group commit), so the cost is one write per
  write's duration, not one per request. A full queue or a failed write raises
  `StoreError`: the caller answers 503 and nothing unlogged is acknowledged.

`close()` writes everything still queued, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyarrow import ArrowException

from tether.classes import ClassCodes
from tether.errors import StoreError, TetherError
from tether.serving.metrics import ServingMetrics
from tether.serving.validation import Rows, row_count
from tether.store import Outputs, PredictionBatch, Store

__all__ = ["LogEntry", "PredictionLog", "as_batches"]

log = logging.getLogger("tether.serving")


@dataclass(slots=True)
class LogEntry:
    """One request's predictions (or its failure) as the request path hands them over."""

    ids: Sequence[str] | None  # None: rows nobody can label (MLflow's protocol)
    rows: Rows
    names: Sequence[str]
    version: int
    route: str
    latency_ms: float
    values: np.ndarray | None = None
    scores: np.ndarray | None = None
    probabilities: np.ndarray | None = None  # (n, k) of a multiclass classifier
    error: bool = False
    codes: ClassCodes | None = None  # a classifier's: predictions are logged as class indices
    ts: float = field(default_factory=time.time)
    model_cpu_ms: float = math.nan  # the model call's CPU time (`Prediction`); NaN if failed
    batch_rows: float = math.nan  # rows of that call
    committed: asyncio.Future[None] | None = None  # set once written (acked durability)

    def outputs(self) -> Outputs:
        n = row_count(self.rows)
        prediction = (self.codes.encode(self.values).reshape(n)
                      if self.codes is not None and self.values is not None
                      else _floats(self.values, n))
        return Outputs(ts=np.full(n, self.ts), prediction=prediction,
                       score=_floats(self.scores, n), latency_ms=np.full(n, self.latency_ms),
                       error=np.full(n, self.error),
                       proba=None if self.probabilities is None
                       else np.asarray(self.probabilities, dtype=float).reshape(n, -1),
                       model_cpu_ms=np.full(n, self.model_cpu_ms),
                       batch_rows=np.full(n, self.batch_rows, dtype=float))


def as_batches(model_name: str, entries: Sequence[LogEntry]) -> list[PredictionBatch]:
    """Entries of one version, route and column set become one batch: the store writes
    one row per batch, and one index entry per prediction id."""
    groups: dict[tuple[int, str, tuple[str, ...], bool, bool], list[LogEntry]] = {}
    for entry in entries:
        key = (entry.version, entry.route, tuple(entry.names),
               isinstance(entry.rows, np.ndarray), entry.ids is None)
        groups.setdefault(key, []).append(entry)
    found = []
    for (version, route, names, is_array, anonymous), group in groups.items():
        if is_array:
            matrix = np.concatenate([np.asarray(e.rows) for e in group])
            features = pd.DataFrame(matrix, columns=list(names))
        else:
            features = pd.concat([e.rows for e in group if isinstance(e.rows, pd.DataFrame)],
                                 ignore_index=True)
        found.append(PredictionBatch(
            model_name=model_name, model_version=version, route=route,
            ids=None if anonymous else [pid for e in group for pid in e.ids or ()],
            features=features,
            outputs=Outputs.concat([e.outputs() for e in group])))
    return found


def _floats(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    try:
        return np.asarray(values, dtype=float).reshape(n)
    except (TypeError, ValueError):  # text from a model whose classes are unknown
        return np.full(n, np.nan)


class PredictionLog:
    """Bounded, batched, background writes of predictions to the store."""

    def __init__(self, store: Store, model_name: str, metrics: ServingMetrics, *,
                 max_rows: int = 200_000, batch_rows: int = 20_000,
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

    async def put_and_wait(self, entry: LogEntry) -> None:
        """Queue `entry` and return once the store has committed it.

        Raises StoreError when the queue is full or the write fails: the prediction was
        not logged, so it must not be acknowledged.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.committed = future
        if not self.put(entry):
            raise StoreError(f"prediction log: {self.max_rows} rows are waiting to be "
                             "written; the store is not keeping up (serving.log_queue_rows)")
        self._wake.set()
        await future

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
        rows = sum(row_count(entry.rows) for entry in batch)
        try:
            result = self.store.log_batches(as_batches(self.model_name, batch))
        except (TetherError, ArrowException, ValueError) as exc:
            log.warning("prediction log: %d rows lost: %s", rows, exc)
            self.metrics.log_dropped.inc(rows)
            _acknowledge(batch, f"prediction log: the store did not write it: {exc}")
            return self._settle(rows, 0)
        except Exception as exc:  # keep the writer alive; the rows are counted as lost
            log.exception("prediction log: %d rows lost", rows)
            self.metrics.log_dropped.inc(rows)
            _acknowledge(batch, f"prediction log: unexpected {type(exc).__name__}")
            return self._settle(rows, 0)
        if result.duplicate_ids:
            log.warning("prediction log: %d rows with ids already logged were left out "
                        "(first: %s)", len(result.duplicate_ids), result.duplicate_ids[0])
            self.metrics.log_dropped.inc(len(result.duplicate_ids))
        self.metrics.log_written.inc(result.written)
        _acknowledge(batch, None)
        return self._settle(rows, result.written)

    def _settle(self, rows: int, written: int) -> int:
        with self._lock:
            self._depth -= rows
            depth = self._depth
        self.metrics.log_queue_depth.set(depth)
        return written


def _acknowledge(batch: Sequence[LogEntry], error: str | None) -> None:
    """Wake the requests waiting for these entries: one call into each event loop."""
    waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for entry in batch:
        if entry.committed is not None:
            waiting.setdefault(entry.committed.get_loop(), []).append(entry.committed)
    for loop, futures in waiting.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, futures, error)


def _resolve(futures: list[asyncio.Future[None]], error: str | None) -> None:
    for future in futures:
        if future.done():  # the request was cancelled (client gone)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(StoreError(error))
