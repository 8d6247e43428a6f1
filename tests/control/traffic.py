"""Traffic as a server would log it: real predictions of a real model, then labels."""

from __future__ import annotations

import uuid

import numpy as np

from tether.example.loans import TARGET, generate
from tether.project import Project
from tether.store import PredictionRecord


def serve(project: Project, version: int, route: str, rows: int, *, seed: int = 0,
          error_rate: float = 0.0, label: bool = True, invert: bool = False,
          ts: float | None = None, shift: float = 0.0, concept: float = 0.0) -> list[str]:
    """Predict `rows` generated rows with `version`, log them on `route`, label them.

    `invert` flips the model's scores (a version that is worse on live traffic);
    `error_rate` marks that share of rows as failed model calls.
    """
    model = project.registry.load_model(version)
    frame = generate(n=rows, seed=seed, shift=shift, concept=concept)
    features = frame.drop(columns=[TARGET])
    assert model.predict_proba is not None
    scores = model.predict_proba(features)[:, 1]
    if invert:
        scores = 1.0 - scores
    predictions = (scores >= 0.5).astype(float)
    failed = np.random.default_rng(seed).random(rows) < error_rate
    ids = [uuid.uuid4().hex for _ in range(rows)]
    records = []
    for i, pid in enumerate(ids):
        extra = {} if ts is None else {"ts": ts}
        records.append(PredictionRecord(
            id=pid, model_name=project.model_name, model_version=version, route=route,
            features=features.iloc[i].to_dict(),
            prediction=None if failed[i] else float(predictions[i]),
            score=None if failed[i] else float(scores[i]), latency_ms=2.0,
            error=bool(failed[i]), **extra))
    project.store.log_predictions(records)
    if label:
        project.store.add_feedback(
            [(pid, float(frame[TARGET].iloc[i])) for i, pid in enumerate(ids) if not failed[i]])
    return ids
