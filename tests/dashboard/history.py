"""A project with a real history, built with the real lifecycle, for the dashboard tests.

Three versions trained by `tether.training.retrain`: v1 promoted, v2 gated and
promoted, v2 rolled back to v1 (with a reason), v3 promoted (so `previous` is v1 and a
rollback is possible). Predictions from the real models for the last 40 minutes, half
of them labeled, with drift in the last 10 minutes.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import write_project
from tether import lifecycle
from tether.example.loans import FEATURES, TARGET, generate
from tether.project import Project
from tether.store import PredictionRecord

ROLLBACK_REASON = "p99 latency 412 ms above max_p99_latency_ms 200"
PROMOTE_REASON = "gate passed: roc_auc up 0.012"


@dataclass(frozen=True)
class History:
    project: Project
    now: float
    predictions: int
    labeled: int


def build_project(folder: Path, mlflow_template: Path) -> Project:
    # Latency gates are tested elsewhere; here a loaded machine must not reject v2.
    write_project(folder, **{"gate.max_latency_ms": 60_000})
    home = folder / ".tether"
    home.mkdir()
    shutil.copyfile(mlflow_template, home / "mlflow.db")
    return Project.open(folder / "tether.yaml")


def build_history(project: Project, *, rows_per_minute: int = 60) -> History:
    """Versions, events, predictions and labels, as forty minutes of real use leave them.

    The lifecycle runs first (its events carry the time they happen); the predictions
    are then logged over the forty minutes before it: v1 from -40 to -20, v2 (slow,
    erroring) from -20 to -10, v1 again after the rollback, v3 for the last 3 minutes,
    with the applicants shifting (drift) over the last 10 minutes.
    """
    v1 = lifecycle.train(project, reason="initial model").version
    lifecycle.promote(project, v1, reason="first champion")
    v2 = lifecycle.train(project, reason="scheduled retrain").version
    lifecycle.gate(project, v2)
    lifecycle.promote(project, v2, reason=PROMOTE_REASON)
    lifecycle.rollback(project, ROLLBACK_REASON)
    v3 = lifecycle.train(project, reason="retrain after rollback").version
    lifecycle.promote(project, v3, reason="recovered: gate passed after retrain")
    now = time.time()
    logged = labeled = 0
    models = {v: project.registry.load_model(v) for v in (v1, v2, v3)}
    for minute in range(40, 0, -1):
        version = v1 if minute > 20 or 3 < minute <= 10 else (v2 if minute > 10 else v3)
        frame = generate(n=rows_per_minute, seed=minute, shift=0.8 if minute <= 10 else 0.0)
        model = models[version]
        assert model.predict_proba is not None
        scores = model.predict_proba(frame[FEATURES])[:, 1]
        records = []
        labels = []
        for i, (row, score) in enumerate(zip(frame.to_dict("records"), scores, strict=True)):
            pid = uuid.uuid4().hex
            slow = 300.0 if version == v2 else 0.0
            records.append(PredictionRecord(
                id=pid, model_name=project.model_name, model_version=version, route="champion",
                features={k: row[k] for k in FEATURES}, prediction=float(score >= 0.5),
                score=float(score), latency_ms=3.0 + (i % 10) + slow,
                error=version == v2 and i % 25 == 0,
                ts=now - minute * 60 + i * 60 / rows_per_minute))
            if i % 2 == 0:
                labels.append((pid, float(row[TARGET])))
        project.store.log_predictions(records)
        labeled += project.store.add_feedback(labels).accepted
        logged += len(records)
    return History(project=project, now=now, predictions=logged, labeled=labeled)
