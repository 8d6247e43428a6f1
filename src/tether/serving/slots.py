"""Loaded model versions: each one a `Slot` with its validator, batcher and metrics.

A slot is built and warmed (a real prediction on the version's input example) in a
worker thread before any request can reach it. `SlotCache` keeps the versions that
serve, plus the champion they replaced, so a rollback is a pointer swap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tether.classes import ClassCodes, model_classes
from tether.registry import LoadedModel, ScoringResponse
from tether.serving.batching import MicroBatcher, Prediction
from tether.serving.metrics import ServingMetrics
from tether.serving.validation import FLOATS, Validator
from tether.serving.warmup import nullable_columns, serving_example

__all__ = ["Slot", "SlotCache", "build_slot", "model_call"]


def model_call(model: LoadedModel) -> Callable[[pd.DataFrame], Prediction]:
    """The one function a batch calls: predictions, and positive-class scores (two
    classes) or class probabilities (more) if the model has them.

    A classifier with `classes_` and `predict_proba` is called once: the labels are the
    argmax of the probabilities, which is how sklearn's forests, boosting and pipelines
    predict, and it halves the cost of asking for both.
    """
    classes = getattr(model.raw, "classes_", None)
    proba = model.predict_proba
    if proba is not None and classes is not None:
        labels = np.asarray(classes)

        def call(frame: pd.DataFrame) -> Prediction:
            probabilities = np.asarray(proba(frame))
            values = labels[np.argmax(probabilities, axis=1)]
            if probabilities.shape[1] == 2:
                return Prediction(values, probabilities[:, 1])
            return Prediction(values, probabilities=probabilities)

        return call
    predict = model.predict
    return lambda frame: Prediction(np.asarray(predict(frame)))


def accepts_missing(call: Callable[[pd.DataFrame], Prediction], example: pd.DataFrame,
                    float_columns: list[str]) -> bool:
    """Whether the model takes NaN in its float columns, found by trying one row.

    Estimator tags cannot tell: a pipeline whose first step tolerates NaN (a scaler) may
    end in one that does not (a linear model).
    """
    if not float_columns:
        return True
    probe = example.head(1).copy()
    probe[float_columns] = np.nan
    try:
        result = call(probe)
        return bool(len(result.values) == 1)
    except Exception:
        return False


@dataclass(eq=False)
class Slot:
    model: LoadedModel
    validator: Validator
    batcher: MicroBatcher
    metrics: ServingMetrics
    loaded_at: float = field(default_factory=time.time)
    proven: bool = False  # a real prediction succeeded (warm-up or traffic)
    codes: ClassCodes | None = None  # a classifier's classes: what the log keeps for each
    _children: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    _scoring: Callable[[bytes, str], ScoringResponse] | None = None
    _scoring_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def version(self) -> int:
        return self.model.version

    def series(self, route: str) -> tuple[Any, Any, Any]:
        """(predictions, errors, latency) metric children for this version on a route."""
        found = self._children.get(route)
        if found is None:
            labels = (self.model.name, str(self.version), route)
            found = (self.metrics.predictions.labels(*labels),
                     self.metrics.prediction_errors.labels(*labels),
                     self.metrics.predict_latency.labels(*labels))
            self._children[route] = found
        return found

    def mlflow_scoring(self, loader: Callable[[str], Callable[[bytes, str], ScoringResponse]]
                       ) -> Callable[[bytes, str], ScoringResponse]:
        """MLflow's own scorer for this version, loaded on first use (blocking)."""
        with self._scoring_lock:
            if self._scoring is None:
                if self.model.path is None:
                    raise RuntimeError(f"version {self.version} has no local model folder")
                self._scoring = loader(self.model.path)
            return self._scoring

    def close(self) -> None:
        self.batcher.close()


def build_slot(model: LoadedModel, metrics: ServingMetrics, *, max_batch_rows: int,
               max_wait_s: float, threads: int | None = 1,
               classes: Sequence[Any] | None = None,
               multiclass: bool | None = None) -> Slot:
    """Compile the version's checks, then warm it with real predictions (blocking): on its
    input example, and on its serving input example parsed as a client's request
    (`tether.serving.warmup`); a version that fails on either never takes traffic.
    `threads` caps the native thread pools of its model calls. `classes`: a classifier's
    class list when the model has no `classes_` of its own (a pyfunc; from its profile);
    `multiclass`: the task's (how the store keeps classes, `tether.classes`)."""
    validator = Validator(model.columns)
    batch_rows = metrics.batch_rows.labels(model.name, str(model.version))

    def on_batch(rows: int, _seconds: float) -> None:
        batch_rows.observe(rows)

    batcher = MicroBatcher(model_call(model), validator.names, max_rows=max_batch_rows,
                           max_wait_s=max_wait_s, label=f"v{model.version}",
                           on_batch=on_batch, threads=threads)
    proven = False
    try:
        if model.input_example is not None:
            example = validator.frame(model.input_example)
            batcher.run_now(example)
            floats = [c.name for c in validator.columns if c.dtype in FLOATS]
            validator.allow_nan = accepts_missing(batcher.run_now, example, floats)
            validator.nullable = nullable_columns(batcher.run_now, example, validator)
            proven = True
        wire = serving_example(model.path, validator, max_rows=max_batch_rows)
        if wire is not None:
            batcher.run_now(wire)
            proven = True
    except BaseException:
        batcher.close()
        raise
    found = model_classes(model) or (list(classes) if classes else None)
    return Slot(model=model, validator=validator, batcher=batcher, metrics=metrics,
                proven=proven,
                codes=ClassCodes(found, multiclass=multiclass) if found else None)


RETIRE_AFTER_SECONDS = 10.0


class SlotCache:
    """Versions loaded in this process, by number.

    An unloaded version is closed only after a grace period: a request that read the
    routing table just before a swap may still be queued on it, and must be answered.
    """

    def __init__(self, retire_after: float = RETIRE_AFTER_SECONDS) -> None:
        self._slots: dict[int, Slot] = {}
        self._retiring: set[Slot] = set()
        self.retire_after = retire_after

    def get(self, version: int) -> Slot | None:
        return self._slots.get(version)

    def add(self, slot: Slot) -> None:
        self._slots[slot.version] = slot

    def versions(self) -> list[int]:
        return sorted(self._slots)

    def retain(self, keep: Iterable[int]) -> list[int]:
        """Unload every version not in `keep`; returns the unloaded ones."""
        wanted = set(keep)
        dropped = [v for v in self._slots if v not in wanted]
        for version in dropped:
            slot = self._slots.pop(version)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop: nothing can be in flight
                slot.close()
                continue
            self._retiring.add(slot)
            loop.call_later(self.retire_after, self._retire, slot)
        return dropped

    def _retire(self, slot: Slot) -> None:
        self._retiring.discard(slot)
        slot.close()

    def close(self) -> None:
        for slot in [*self._slots.values(), *self._retiring]:
            slot.close()
        self._slots.clear()
        self._retiring.clear()
