"""What the store takes and gives back: predictions, batches, events, results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tether.store.codec import Outputs

__all__ = ["Event", "FeedbackResult", "LogResult", "PredictionBatch", "PredictionRecord",
           "PruneResult"]


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction, as tests and tools that write a few at a time hand it over."""

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
    proba: Sequence[float] | None = None  # class probabilities of a multiclass model


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """Predictions of one version and route, as the model server's log writes them.
    Without ids, nothing can label the rows: they are stored without index entries and
    read back as `@<batch>:<row>`."""

    model_name: str
    model_version: int
    route: str
    ids: list[str] | None
    features: pd.DataFrame
    outputs: Outputs

    def __len__(self) -> int:
        return int(self.outputs.ts.shape[0])

    def without(self, drop: set[str]) -> PredictionBatch:
        if self.ids is None:
            return self
        keep = np.array([pid not in drop for pid in self.ids], dtype=bool)
        return PredictionBatch(
            model_name=self.model_name, model_version=self.model_version, route=self.route,
            ids=[pid for pid, kept in zip(self.ids, keep, strict=True) if kept],
            features=self.features.loc[keep].reset_index(drop=True),
            outputs=self.outputs.take(np.flatnonzero(keep)))

    @classmethod
    def of_records(cls, records: Sequence[PredictionRecord]) -> PredictionBatch:
        """One batch of records that share model, version, route and feature names."""
        first = records[0]

        def column(name: str) -> np.ndarray:
            return np.array([np.nan if getattr(r, name) is None else getattr(r, name)
                             for r in records], dtype=float)

        return cls(
            model_name=first.model_name, model_version=first.model_version, route=first.route,
            ids=[r.id for r in records],
            features=pd.DataFrame.from_records([r.features for r in records],
                                               columns=list(first.features)),
            outputs=Outputs(ts=column("ts"), prediction=column("prediction"),
                            score=column("score"), latency_ms=column("latency_ms"),
                            error=np.array([r.error for r in records], dtype=bool),
                            proba=_proba(records)))


def _proba(records: Sequence[PredictionRecord]) -> np.ndarray | None:
    k = max((len(r.proba) for r in records if r.proba is not None), default=0)
    if not k:
        return None
    proba = np.full((len(records), k), np.nan)
    for i, record in enumerate(records):
        if record.proba is not None:
            proba[i, :len(record.proba)] = record.proba
    return proba


@dataclass(frozen=True, slots=True)
class LogResult:
    written: int
    duplicate_ids: list[str]


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
class PruneResult:
    batches: int = 0
    predictions: int = 0
    labels: int = 0
    totals: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "predictions": self.predictions,
                "labels": self.labels, "totals": self.totals}


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    accepted: int
    unknown_ids: list[str]
