"""The model server's state: what is loaded, what is routed, and serving one request.

`ModelServer.reload()` reads the registry, loads and warms new versions in a thread,
then replaces the routing table in one assignment; requests read the table once, so a
swap never fails a request in flight.

The registry may be slow or away; serving never waits for it. Reloads run one at a time
with at most one more waiting its turn (`schedule_reload`); a registry read that takes
longer than `serving.registry_timeout_seconds` fails the reload as "unreachable" while
the read goes on in its own thread; later reloads join a recent read or start a fresh
one beside a stale one, so a hung registry holds a few threads, not one per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from tether.classes import VersionClasses, model_classes, recorded_classes, version_classes
from tether.config import Durability, ServingPolicy, Task
from tether.errors import (
    InputError,
    ModelNotReady,
    PredictionFailed,
    RegistryError,
    RegistryUnavailable,
    TetherError,
)
from tether.events import EventKind
from tether.project import Project
from tether.registry import (
    LoadedModel,
    RegistryState,
    ScoringResponse,
    load_model_dir,
    mlflow_scoring,
)
from tether.serving.batching import ModelCallFailed, Prediction
from tether.serving.ids import FAILED_SUFFIX, SHADOW_SUFFIX, IdSource
from tether.serving.metrics import ServingMetrics
from tether.serving.predlog import LogEntry, PredictionLog
from tether.serving.protocol import Payload
from tether.serving.registry_health import RegistryHealth
from tether.serving.routing import CANARY, CHAMPION, SHADOW, RoutingTable
from tether.serving.slots import Slot, SlotCache, build_slot
from tether.serving.validation import Rows, row_count
from tether.store import FeedbackResult

__all__ = ["FAILED_SUFFIX", "SHADOW_SUFFIX", "ModelServer", "Served"]

log = logging.getLogger("tether.serving")
predictions_log = logging.getLogger("tether.predictions")
T = TypeVar("T")

MAX_SHADOW_ROWS_IN_FLIGHT = 10_000
MAX_READS_IN_FLIGHT = 3  # threads a hung registry may hold


@dataclass(eq=False)
class _Read:
    """One registry read in flight, and whether its failure was already counted."""

    future: asyncio.Future[RegistryState]
    started: float = field(default_factory=time.monotonic)
    counted: bool = False


@dataclass(frozen=True, slots=True)
class Served:
    ids: list[str] | None
    prediction: Prediction
    version: int
    route: str


class ModelServer:
    """Follows the registry (or one model folder) and serves predictions."""

    def __init__(self, project: Project, metrics: ServingMetrics, *,
                 options: ServingPolicy | None = None, model_path: str | None = None,
                 poll_seconds: float | None = None) -> None:
        self.project = project
        self.metrics = metrics
        self.options = options or project.policy.serving
        self.model_path = model_path
        self.model_name = project.model_name
        self.poll_seconds = poll_seconds if poll_seconds is not None else \
            project.settings.poll_seconds
        self.table = RoutingTable()
        self.last_reload: float | None = None
        self.last_error: str | None = None
        self.predlog = PredictionLog(project.store, self.model_name, metrics,
                                     max_rows=self.options.log_queue_rows,
                                     batch_rows=self.options.log_batch_rows,
                                     flush_seconds=self.options.log_flush_seconds)
        self.registry_health = RegistryHealth(metrics, self.model_name)
        self._durability = self.options.durability
        self._slots = SlotCache()
        self._failed: dict[int, str] = {}
        self._ids = IdSource()
        self._multiclass = project.policy.model.task is Task.MULTICLASS
        self._classes = VersionClasses(self._version_classes, multiclass=self._multiclass)
        self._reload_lock: asyncio.Lock | None = None
        self._queued: asyncio.Task[None] | None = None  # a reload waiting for its turn
        self._queued_retry = False
        self._first_load: asyncio.Task[None] | None = None
        self._reads: list[_Read] = []  # registry reads in flight, oldest first
        self._poller: asyncio.Task[None] | None = None
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._shadow_rows = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ready(self) -> bool:
        """True once the champion has answered a real prediction (its warm-up counts)."""
        champion = self.table.champion
        return champion is not None and champion.proven

    # lifecycle -------------------------------------------------------------------------

    async def start(self, *, poll: bool = True, wait: bool = True) -> None:
        """Start the log writer and the first load, then the poller.

        With `wait`, return once the first load has ended (loaded or failed): code in
        this process can predict at once. Without, return at once: the server takes
        connections while the model loads or the registry is away, and `ready` says
        when it can serve (`tether serve` and `tether up` start this way, so a
        Kubernetes probe finds the port open and "not ready" rather than no port).
        """
        self._loop = asyncio.get_running_loop()
        self.predlog.start()
        self._first_load = self.schedule_reload()
        if wait:
            await asyncio.wait({self._first_load})
        if poll and self.model_path is None:
            self._poller = asyncio.create_task(self._poll(), name="tether-registry-poll")

    async def stop(self) -> None:
        pending = [t for t in (self._poller, self._queued, self._first_load) if t is not None]
        for task in pending:
            task.cancel()
        if pending:
            # a reload stuck on an unresponsive registry is left to its thread: waiting
            # for it would hold the shutdown, and with it the prediction log's last write
            await asyncio.wait(pending, timeout=1.0)
        self._poller = self._queued = self._first_load = None
        if self._shadow_tasks:
            await asyncio.wait(list(self._shadow_tasks), timeout=10)
        await asyncio.to_thread(self.predlog.close)
        self._slots.close()
        self.table = RoutingTable()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            # failures were counted and logged (once per change) by the reload itself
            await asyncio.wait({self.schedule_reload(retry_failed=False)})

    # following the registry ------------------------------------------------------------

    def schedule_reload(self, *, retry_failed: bool = True) -> asyncio.Task[None]:
        """A reload that reads the registry after this call, running in the background.

        A reload already waiting for its turn is joined rather than another queued, so
        at most one runs and one waits however often this is called. `retry_failed`
        also retries versions that failed to load before.
        """
        self._queued_retry = self._queued_retry or retry_failed
        if self._queued is None or self._queued.done():
            task = asyncio.create_task(self.reload(retry_failed=False), name="tether-reload")
            task.add_done_callback(_retrieve)
            self._queued = task
        return self._queued

    async def reload_within(self, seconds: float) -> bool:
        """Reload, waiting at most `seconds`: True when it finished, False when it goes
        on in the background. Raises what the reload raised when it failed in time."""
        task = self.schedule_reload()
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if task in done:
            task.result()
            return True
        return False

    async def reload(self, *, retry_failed: bool = True) -> None:
        """Load what the registry says should serve, then swap routing in one step."""
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            if self._queued is asyncio.current_task():
                self._queued = None  # running now: the next schedule_reload queues anew
                retry_failed = retry_failed or self._queued_retry
                self._queued_retry = False
            try:
                if self.model_path is not None:
                    await self._reload_path()
                else:
                    await self._reload_registry(retry_failed)
            except Exception as exc:
                description = _describe(exc)
                # the registry's own failures are logged once per outage by its health;
                # anything else once per distinct error, not once per poll
                if not isinstance(exc, RegistryError) and description != self.last_error:
                    log.warning("model server: reload failed: %s", description)
                self.last_error = description
                raise
            self.last_error = None
            self.last_reload = time.time()

    async def switch_champion(self, version: int) -> bool:
        """Serve an already loaded `version` as the only champion, now (a rollback's
        pointer swap); False when it is not loaded. The next reload reconciles the rest."""
        slot = self._slots.get(version)
        if slot is None:
            return False
        self._swap(RoutingTable(champion=slot))
        return True

    def reload_from_thread(self, timeout: float = 60.0) -> None:
        """`reload()` for code outside the server's event loop (a controller thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise ModelNotReady("the model server is not running")
        asyncio.run_coroutine_threadsafe(self.reload(), loop).result(timeout)

    async def _reload_path(self) -> None:
        if self.table.champion is not None:
            return
        path = self.model_path
        assert path is not None
        version = int(os.environ.get("MODEL_VERSION", "1"))
        slot = await self._ensure(version, lambda: load_model_dir(
            path, name=self.model_name, version=version), retry_failed=True)
        if slot is not None:
            self._swap(RoutingTable(champion=slot))

    async def _reload_registry(self, retry_failed: bool) -> None:
        registry = self.project.registry
        state = await self._read_state()
        current = self.table
        champion = current.champion
        if state.champion is not None:
            number = state.champion
            loaded = await self._ensure(number, lambda: registry.load_model(number),
                                        retry_failed=retry_failed)
            champion = loaded or champion
        challenger: Slot | None = None
        mode: str | None = None
        weight = 0.0
        rollout = state.rollout
        if rollout is not None and champion is not None and rollout.version != champion.version:
            number = rollout.version
            challenger = await self._ensure(number, lambda: registry.load_model(number),
                                            retry_failed=retry_failed)
            if challenger is not None:
                mode = rollout.mode
                weight = min(max(rollout.weight, 0.0), 1.0) if mode == CANARY else 0.0
        table = RoutingTable(champion=champion, challenger=challenger, mode=mode, weight=weight)
        replaced = current.champion.version if current.champion is not None else None
        self._swap(table)
        keep = {s.version for s in (table.champion, table.challenger) if s is not None}
        keep.update(v for v in (replaced, state.previous) if v is not None)
        self._slots.retain(keep)

    async def _read_state(self) -> RegistryState:
        """The registry's state, or RegistryUnavailable after the registry timeout.

        A read younger than the timeout is joined rather than another started (and read
        again once it answers if it began before this call: its answer may predate a
        write the caller wants to see). One older than that already failed its caller:
        a fresh read starts beside it, so recovery never waits for a client's retry
        schedule, and at most MAX_READS_IN_FLIGHT threads wait on a hung registry.
        """
        timeout = self.options.registry_timeout_seconds
        asked = time.monotonic()
        deadline = asked + timeout
        while True:
            read = self._choose_read(timeout)
            try:
                state = await asyncio.wait_for(asyncio.shield(read.future),
                                               max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                read.counted = True  # its own failure, if it comes, is this one
                reason = f"no answer within {timeout:g} s"
                self.registry_health.failed(reason)
                raise RegistryUnavailable(f"read registry state: {reason}") from None
            if read.started >= asked:
                return state
            deadline = max(deadline, time.monotonic() + timeout)

    def _choose_read(self, timeout: float) -> _Read:
        now = time.monotonic()
        recent = [read for read in self._reads if now - read.started < timeout]
        if recent:
            return recent[-1]
        if len(self._reads) >= MAX_READS_IN_FLIGHT:
            return self._reads[-1]
        read = self._start_read()
        self._reads.append(read)
        return read

    def _start_read(self) -> _Read:
        registry = self.project.registry
        read = _Read(_in_daemon_thread(registry.state))

        def done(future: asyncio.Future[RegistryState]) -> None:
            if read in self._reads:
                self._reads.remove(read)
            if future.cancelled():
                return
            error = future.exception()
            if error is None:
                self.registry_health.succeeded()
            elif not read.counted:
                self.registry_health.failed(_describe(error))

        read.future.add_done_callback(done)
        return read

    async def _ensure(self, version: int, load: Any, *, retry_failed: bool) -> Slot | None:
        found = self._slots.get(version)
        if found is not None:
            return found
        if version in self._failed and not retry_failed:
            return None
        options = self.options

        def build() -> Slot:
            model: LoadedModel = load()
            return build_slot(model, self.metrics, max_batch_rows=options.max_batch_rows,
                              max_wait_s=options.max_wait_ms / 1000.0,
                              threads=options.model_threads,
                              classes=None if model_classes(model)
                              else self._recorded_classes(version),
                              multiclass=self._multiclass)

        try:
            slot = await asyncio.to_thread(build)
        except RegistryUnavailable as exc:
            # the registry went away mid-download: an outage, not a bad version
            self.registry_health.failed(_describe(exc))
            raise
        except Exception as exc:
            reason = _describe(exc)
            self._failed[version] = reason
            self.metrics.load_failures.labels(self.model_name, str(version)).inc()
            log.warning("model server: version %s failed to load or warm: %s", version, reason)
            try:
                await asyncio.to_thread(self.project.record, EventKind.MODEL_LOAD_FAILED,
                                        f"version {version} failed to load or warm: {reason}",
                                        version, {"error": reason})
            except TetherError as error:
                log.warning("model server: could not record the failure: %s", error)
            return None
        self._failed.pop(version, None)
        self._slots.add(slot)
        self._classes.put(version, slot.codes)
        _freeze_heap()
        return slot

    def _swap(self, table: RoutingTable) -> None:
        self.table = table  # the one assignment every request reads
        info = self.metrics.model_info
        info.clear()
        for served in table.describe():
            info.labels(self.model_name, str(served["version"]), served["route"]).set(1)
        self.metrics.rollout_weight.clear()
        if table.challenger is not None:
            self.metrics.rollout_weight.labels(self.model_name, str(table.challenger.version)
                                               ).set(table.weight)

    # serving ---------------------------------------------------------------------------

    async def predict(self, payload: Payload, *, with_ids: bool = True) -> Served:
        """Serve one request. Without `with_ids` (MLflow's protocol, whose answer has no
        ids, so nothing can label its rows) the rows are logged without ids, unless the
        client sent some."""
        table = self.table
        if table.champion is None:
            failed = "".join(f"; version {v} failed to load: {reason}"
                             for v, reason in sorted(self._failed.items()))
            raise ModelNotReady("no champion model is loaded yet: train and promote a version "
                                "(`tether retrain`, `tether promote`)" + failed
                                + (f"; last error: {self.last_error}" if self.last_error
                                   else ""))
        ids = payload.ids or (self._ids.take(payload.n) if with_ids else None)
        slot, route = table.choose(ids[0] if ids else self._ids.key())
        try:
            rows = payload.rows(slot.validator)
        except InputError:
            if route == CHAMPION:
                raise
            slot, route = table.champion, CHAMPION  # the canary's schema differs; champion
            rows = payload.rows(slot.validator)
        try:
            served = await self._call(slot, route, rows, ids)
        except ModelCallFailed as exc:
            if route == CHAMPION:
                raise PredictionFailed(f"model {self.model_name} version {slot.version} failed "
                                       f"on this request: {exc}") from exc
            champion = table.champion
            rows = payload.rows(champion.validator)
            try:
                served = await self._call(champion, CHAMPION, rows, ids)
            except ModelCallFailed as error:
                raise PredictionFailed(f"model {self.model_name} version {champion.version} "
                                       f"failed on this request: {error}") from error
        shadow = table.shadow
        if shadow is not None:
            self._start_shadow(shadow, payload, ids)
        return served

    def _waits_for_commit(self, route: str, ids: Sequence[str] | None) -> bool:
        """Whether the answer waits until its predictions are committed
        (`serving.durability`); nobody waits for a shadow's answer."""
        if route == SHADOW or self._durability is Durability.BATCHED:
            return False
        return self._durability is Durability.ACKED or ids is not None

    async def _call(self, slot: Slot, route: str, rows: Rows,
                    ids: Sequence[str] | None) -> Served:
        """One model call, counted and logged (a failure as error rows, then re-raised)."""
        predictions, errors, latency = slot.series(route)
        n = row_count(rows)
        started = time.perf_counter()
        try:
            result = await slot.batcher.submit(rows)
        except ModelCallFailed:
            elapsed = time.perf_counter() - started
            errors.inc(n)
            failed_ids = (ids if route != CANARY or ids is None
                          else [f"{pid}{FAILED_SUFFIX}" for pid in ids])
            self.predlog.put(LogEntry(ids=failed_ids, rows=rows, names=slot.validator.names,
                                      version=slot.version, route=route,
                                      latency_ms=elapsed * 1000.0, error=True,
                                      ts=self.project.clock()))
            raise
        elapsed = time.perf_counter() - started
        slot.proven = True
        predictions.inc(n)
        latency.observe(elapsed)
        entry = LogEntry(ids=ids, rows=rows, names=slot.validator.names, version=slot.version,
                         route=route, latency_ms=elapsed * 1000.0, values=result.values,
                         scores=result.scores, probabilities=result.probabilities,
                         codes=slot.codes, ts=self.project.clock(),
                         model_cpu_ms=result.model_cpu_ms,
                         batch_rows=result.batch_rows or math.nan)
        if self.options.log_features:
            _log_features(entry)
        if self._waits_for_commit(route, ids):
            await self.predlog.put_and_wait(entry)
        else:
            self.predlog.put(entry)
        return Served(None if ids is None else list(ids), result, slot.version, route)

    def _start_shadow(self, slot: Slot, payload: Payload, ids: Sequence[str] | None) -> None:
        if self._shadow_rows + payload.n > MAX_SHADOW_ROWS_IN_FLIGHT:
            return  # shadow scoring is best effort; it never queues without bound
        self._shadow_rows += payload.n
        task = asyncio.create_task(self._shadow(slot, payload, ids))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_done(payload.n))

    def _shadow_done(self, n: int) -> Any:
        def done(task: asyncio.Task[None]) -> None:
            self._shadow_tasks.discard(task)
            self._shadow_rows -= n
        return done

    async def _shadow(self, slot: Slot, payload: Payload, ids: Sequence[str] | None) -> None:
        try:
            rows = payload.rows(slot.validator)
        except InputError:
            return
        shadow_ids = None if ids is None else [f"{pid}{SHADOW_SUFFIX}" for pid in ids]
        # a failure is recorded as an error row; the response was never waiting for it
        with contextlib.suppress(ModelCallFailed):
            await self._call(slot, SHADOW, rows, shadow_ids)

    async def score_like_mlflow(self, body: bytes, content_type: str) -> ScoringResponse:
        """The champion scored by MLflow's own code: its exact answer for any input."""
        table = self.table
        if table.champion is None:
            raise ModelNotReady("no champion model is loaded yet")
        slot = table.champion
        scorer = await asyncio.to_thread(slot.mlflow_scoring, mlflow_scoring)
        return await asyncio.to_thread(scorer, body, content_type)

    async def feedback(self, labels: Sequence[tuple[str, Any]]) -> FeedbackResult:
        """Write labels before answering; each also labels its shadow twin, if any.

        A classifier's label is one of the classes of the version that made the
        prediction, kept as the store keeps classes (`tether.classes`); a label that is none
        of them refuses the request (LabelNotAClass, 400) and writes nothing."""
        def write() -> FeedbackResult:
            self.predlog.flush()  # predictions still queued must be known to the store
            store = self.project.store
            result = store.add_feedback(labels, self._label_code)
            # shadow rows of the same requests get the same labels (ids without one are
            # simply unknown to the store); a class the shadow version lacks is left out
            store.add_feedback([(f"{pid}{SHADOW_SUFFIX}", label) for pid, label in labels],
                               self._shadow_label_code)
            return result

        result = await asyncio.to_thread(write)
        self.metrics.feedback_labels.labels(self.model_name).inc(result.accepted)
        return result

    def _label_code(self, version: int, label: Any) -> float:
        codes = self._classes.get(version)
        if codes is not None:
            return codes.code(label, owner=f"version {version} (which made the prediction)")
        return _number_label(label, version)

    def _shadow_label_code(self, version: int, label: Any) -> float | None:
        try:
            return self._label_code(version, label)
        except InputError:
            return None

    def _recorded_classes(self, version: int) -> list[Any] | None:
        """A version's classes when its model has no `classes_`: from its profile."""
        if self.model_path is not None or not self.project.policy.model.task.classification:
            return None
        return recorded_classes(self.project.registry, version)

    def _version_classes(self, version: int) -> list[Any] | None:
        """The classes of a version that is not loaded (a label for a prediction made
        before this process started serving it, or by a retired version)."""
        slot = self._slots.get(version)
        if slot is not None:
            return slot.codes.classes if slot.codes is not None else None
        if self.model_path is not None or not self.project.policy.model.task.classification:
            return None
        return version_classes(self.project.registry, version)

    # what is served --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        table = self.table
        return {
            "model": self.model_name,
            "ready": self.ready,
            "source": f"model folder {self.model_path}" if self.model_path else "registry",
            "champion": table.champion.version if table.champion else None,
            "challenger": table.challenger.version if table.challenger else None,
            "mode": table.mode,
            "weight": table.weight,
            "served": table.describe(),
            "loaded": self._slots.versions(),
            "failed": {str(v): reason for v, reason in sorted(self._failed.items())},
            "last_reload": self.last_reload,
            "reason": self.not_ready_reason(),
            "registry": None if self.model_path else self.registry_health.as_dict(),
        }

    def not_ready_reason(self) -> str | None:
        """Why the server cannot serve yet, in one line; None when it is ready."""
        champion = self.table.champion
        if champion is not None:
            return None if champion.proven else (
                f"version {champion.version} has not answered a prediction yet")
        health = self.registry_health
        if self.model_path is None and health.up is False:
            return (f"registry unreachable ({health.last_error}); retrying every "
                    f"{self.poll_seconds:g} s")
        if self._first_load is not None and not self._first_load.done():
            return "loading the model"
        if self.last_error:
            return self.last_error
        if self._failed:
            version, reason = max(self._failed.items())
            return f"version {version} failed to load: {reason}"
        return ("no champion in the registry: train and promote a version "
                "(`tether retrain`, `tether promote`)")


def _log_features(entry: LogEntry) -> None:
    """The request's features and outputs as one log record (serving.log_features)."""
    rows = (entry.rows.to_dict("records") if isinstance(entry.rows, pd.DataFrame) else
            [dict(zip(entry.names, row, strict=True)) for row in entry.rows.tolist()])
    predictions_log.info("prediction", extra={
        "model_version": entry.version, "route": entry.route, "ids": entry.ids,
        "features": rows, "predictions": (entry.values.tolist()
                                          if entry.values is not None else None)})


def _in_daemon_thread(function: Callable[[], T]) -> asyncio.Future[T]:
    """Run `function` in a daemon thread: a call that never returns (a registry that
    stopped answering) must not keep the process from exiting, as an executor's would."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def run() -> None:
        try:
            result = function()
        except BaseException as exc:
            error: BaseException | None = exc
            result = None
        else:
            error = None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="tether-registry-read", daemon=True).start()
    return future


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a background task's exception as seen: the task recorded it already."""
    if not task.cancelled():
        task.exception()


def _freeze_heap() -> None:
    """Move what is loaded now (MLflow, pandas, the models) out of the cyclic collector's
    view: it lives as long as the process, and a full collection that walks it stalls
    every request in flight for tens of milliseconds (p99 at 32 connections: 141 ms
    before, 25 ms after, benchmarks/README.md). Reference counting still frees it."""
    gc.collect()
    gc.freeze()


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# an error between two numbers this large still squares to a finite float64
# (sqrt of the largest float64 is 1.3e154), so RMSE and R2 stay defined
MAX_NUMBER_LABEL = 1e150


def _number_label(label: Any, version: int) -> float:
    """The label of a prediction made by a version without classes (a regressor): a
    finite number of at most MAX_NUMBER_LABEL in size, given as a JSON number or as text.

    Raises InputError naming the label otherwise (true/false, "nan", "inf", 1e308)."""
    owner = f"version {version} made the prediction and has no classes, so its labels are"
    if isinstance(label, bool):
        raise InputError(f"label {label!r}: {owner} numbers, not true/false")
    try:
        number = float(label)
    except (TypeError, ValueError):
        raise InputError(f"label {label!r}: {owner} numbers") from None
    if not math.isfinite(number) or abs(number) > MAX_NUMBER_LABEL:
        raise InputError(f"label {label!r}: {owner} finite numbers of at most "
                         f"{MAX_NUMBER_LABEL:g} in size")
    return number
