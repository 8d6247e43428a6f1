"""Adaptive micro-batching: concurrent requests for one model version share one call.

While a model call runs, new requests queue; the next call takes all of them (up to
`max_rows`). A batch is held open up to `max_wait_s` only while more requests are
expected: fewer are queued than were outstanding at once (submitted, not yet answered)
within the last second or two. A lone client is never held; eight clients whose
answers leave together come back together, and waiting the moment it takes them to
resend turns two alternating half batches into one, halving the calls' fixed cost
(the example's HistGradientBoosting pipeline, 100-row bodies from 8 connections on one
core: 4 requests a call without the wait, 8 with it, 1.33x the requests/s;
benchmarks/README.md). A failed batch is retried request by request, so one bad request
fails alone.

Each version's calls run in one thread whose native thread pools (OpenMP, BLAS) are
limited to `threads` with threadpoolctl: the batcher already makes the server parallel
(event loop, model thread, log writer), and a one-row call that fans out to every core
spends more time waiting for its threads to be scheduled than predicting, worst when
neighbours hold the cores (the example's HistGradientBoosting on a loaded 2-core
machine, 1-row requests: 3-23x the requests per second with one thread than with one
per core; benchmarks/README.md, "settings").
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tether.serving.validation import Rows, row_count, to_frame
from tether.threads import limit_this_thread

__all__ = ["MicroBatcher", "ModelCallFailed", "Prediction"]

# How long a peak of outstanding requests is remembered: two windows of this length.
PEAK_WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class Prediction:
    """A batch's answer: labels or values (n,); positive-class scores (n,) of a binary
    classifier; class probabilities (n, k) of a multiclass one, columns in `classes_`.

    `model_cpu_ms`: CPU time of the model thread during the call that answered it (NaN
    until the batcher measured it); `batch_rows`: how many rows that call had. A slice
    keeps both: every request of a batch carries its batch's figures."""

    values: np.ndarray
    scores: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    model_cpu_ms: float = math.nan
    batch_rows: int = 0

    def slice(self, start: int, stop: int) -> Prediction:
        return Prediction(self.values[start:stop],
                          None if self.scores is None else self.scores[start:stop],
                          None if self.probabilities is None
                          else self.probabilities[start:stop],
                          self.model_cpu_ms, self.batch_rows)


class ModelCallFailed(Exception):
    """The model raised, or returned the wrong number of rows."""


@dataclass(slots=True)
class _Pending:
    rows: Rows
    future: asyncio.Future[Prediction]


def combine(parts: Sequence[Rows], names: Sequence[str] | pd.Index) -> pd.DataFrame:
    """One frame for the model from several requests' rows."""
    if len(parts) == 1:
        return to_frame(parts[0], names)
    if all(isinstance(part, np.ndarray) for part in parts):
        return to_frame(np.vstack(parts), names)
    return pd.concat([to_frame(part, names) for part in parts], ignore_index=True)


class MicroBatcher:
    """Queues requests for one model version and runs them as batches in one thread."""

    def __init__(self, call: Callable[[pd.DataFrame], Prediction], names: Sequence[str], *,
                 max_rows: int = 1024, max_wait_s: float = 0.0, label: str = "model",
                 on_batch: Callable[[int, float], None] | None = None,
                 threads: int | None = None) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1.")
        self._call = call
        self._names = pd.Index(list(names))  # built once: a column index per batch costs
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        # one thread per version: model calls leave the event loop free to parse requests
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tether-{label}",
                                            initializer=limit_this_thread, initargs=(threads,))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._carry: _Pending | None = None
        self._closed = False
        self._outstanding = 0
        self._peak = 0            # most requests outstanding at once in this window
        self._previous_peak = 0   # ... and in the window before
        self._window_started = time.monotonic()

    async def submit(self, rows: Rows) -> Prediction:
        if self._closed:
            raise ModelCallFailed("this model version was unloaded")
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._queue is None:
            self._start(loop)
        assert self._queue is not None
        future: asyncio.Future[Prediction] = loop.create_future()
        self._queue.put_nowait(_Pending(rows, future))
        self._outstanding += 1
        self._note_peak()
        try:
            return await future
        finally:
            self._outstanding -= 1

    def _note_peak(self) -> None:
        now = time.monotonic()
        if now - self._window_started >= PEAK_WINDOW_S:
            recent = now - self._window_started < 2 * PEAK_WINDOW_S
            self._previous_peak = self._peak if recent else 0
            self._peak = 0
            self._window_started = now
        self._peak = max(self._peak, self._outstanding)

    def expected_requests(self) -> int:
        """How many requests a batch may wait for: the most that were outstanding at
        once lately (1 for a lone client)."""
        self._note_peak()
        return max(self._peak, self._previous_peak, 1)

    def run_now(self, rows: Rows) -> Prediction:
        """One blocking call outside any batch (warm-up), in the model's thread."""
        frame = to_frame(rows, self._names)
        return self._executor.submit(self._checked, frame, row_count(rows)).result()

    def close(self) -> None:
        self._closed = True
        if self._worker is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._worker.cancel)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # the worker ------------------------------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue = asyncio.Queue()
        self._carry = None
        self._worker = loop.create_task(self._work(), name="tether-batcher")

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._gather()
            try:
                await self._run(batch)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(ModelCallFailed("server shutting down"))
                raise

    async def _gather(self) -> list[_Pending]:
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, rows = [first], row_count(first.rows)
        deadline = time.perf_counter() + self.max_wait_s
        while rows < self.max_rows:
            if self._queue.empty():
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or len(batch) >= self.expected_requests():
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            size = row_count(item.rows)
            if rows + size > self.max_rows:
                self._carry = item
                break
            batch.append(item)
            rows += size
        return batch

    async def _run(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        total = sum(row_count(item.rows) for item in batch)
        started = time.perf_counter()
        try:
            frame = combine([item.rows for item in batch], self._names)
            result = await loop.run_in_executor(self._executor, self._checked, frame, total)
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:  # find the request that broke it; the others succeed
                    await self._run([item])
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(
                    exc if isinstance(exc, ModelCallFailed) else ModelCallFailed(_describe(exc)))
            return
        if self._on_batch is not None:
            self._on_batch(total, time.perf_counter() - started)
        start = 0
        for item in batch:
            stop = start + row_count(item.rows)
            if not item.future.done():
                item.future.set_result(result.slice(start, stop))
            start = stop

    def _checked(self, frame: pd.DataFrame, expected: int) -> Prediction:
        # CPU time of this thread, not the wall clock: a neighbour taking the cores
        # delays the call but does not add to it, so the canary can compare two arms'
        # costs on a busy machine (`tether.latency.compare_cpu_per_call`). Native pools
        # run at `threads` (one by default), so the model's work is in this thread. The
        # pair of reads costs 2-3 us a batch (a system call: thread CPU clocks are not
        # in the vDSO; measured on a shared 2-core machine), against 3-4 ms of CPU for
        # the example's one-row call.
        began = time.thread_time_ns()
        try:
            result = self._call(frame)
        except Exception as exc:
            raise ModelCallFailed(_describe(exc)) from exc
        cpu_ms = (time.thread_time_ns() - began) / 1e6
        if len(result.values) != expected:
            raise ModelCallFailed(f"the model returned {len(result.values)} predictions for "
                                  f"{expected} rows")
        return dataclasses.replace(result, model_cpu_ms=cpu_ms, batch_rows=expected)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
