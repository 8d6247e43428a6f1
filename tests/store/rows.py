"""Rows for store tests: predictions with or without labels, under a model of their own."""

from __future__ import annotations

import time
import uuid

from tether.store import PredictionRecord, Store

T0 = 1_699_999_800.0  # a multiple of 60 and 600


def unique_model() -> str:
    """A model name of its own, so a shared PostgreSQL database needs no cleaning."""
    return f"m-{uuid.uuid4().hex[:8]}"


def record(pid: str, version: int = 1, route: str = "champion", ts: float | None = None,
           model: str = "m", **features: object) -> PredictionRecord:
    return PredictionRecord(id=pid, model_name=model, model_version=version, route=route,
                            features=dict(features) or {"x": 1.5, "kind": "a"}, prediction=1.0,
                            score=0.7, latency_ms=2.0, ts=ts if ts is not None else time.time())


def log_one(store: Store, model: str, version: int, ts: float, *, score: float,
            latency: float, error: bool = False, label: float | None = None) -> str:
    """One prediction (and its label, when given); returns its id."""
    pid = uuid.uuid4().hex
    store.log_predictions([PredictionRecord(
        id=pid, model_name=model, model_version=version, route="champion", features={"x": 1},
        prediction=float(score >= 0.5), score=score, latency_ms=latency, error=error, ts=ts)])
    if label is not None:
        store.add_feedback([(pid, label)])
    return pid
