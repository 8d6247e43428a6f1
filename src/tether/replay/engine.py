"""One policy replayed: the real server answers the history's rows, labels reach
`/feedback` after the delay, and the real controller passes run with the clock moved
forward by the data.

```
for each pass time t (every monitoring.interval_seconds of history, at least one row apart):
    clock <- t
    POST /predict   the rows up to t (one request per row while a rollout splits traffic,
                    since routing is per request; one request for all of them otherwise)
    POST /feedback  the labels of rows whose time + label delay <= t
    periodic only:  submit a schedule trigger every P
    controller.tick(); a retrain it starts is waited for (training takes no history time)
    periodic only:  promote the candidate when its gate passed
```

Nothing waits on the wall clock and no socket is opened: the ASGI app runs in process
(starlette's TestClient), the registry and the store live in a folder of their own.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tether import apps, lifecycle
from tether.config import Config, DataSource, load_config
from tether.control.actions import AbortRollout, Promote, RollBack, SetStep, StartRollout
from tether.control.clock import ManualClock
from tether.control.controller import Pass
from tether.control.triggers import Trigger, TriggerKind
from tether.errors import TetherError
from tether.project import Project
from tether.registry import State
from tether.replay.arms import Arm, arm_policy
from tether.replay.history import History, describe_seconds, when
from tether.store import Event

__all__ = ["ArmRun", "Costs", "Plan", "run_arm"]

PREDICT_CHUNK = 5000  # rows per request, below serving.max_rows' default


@dataclass
class Costs:
    """Wall seconds by where they went. `mlflow` is time inside the registry (MLflow),
    wherever it was called from; the others exclude it."""

    training: float = 0.0
    mlflow: float = 0.0
    server: float = 0.0
    controller: float = 0.0
    setup: float = 0.0
    requests: int = 0
    rows: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {"training_seconds": round(self.training, 3),
                "mlflow_seconds": round(self.mlflow, 3),
                "server_seconds": round(self.server, 3),
                "controller_seconds": round(self.controller, 3),
                "setup_seconds": round(self.setup, 3),
                "requests": self.requests, "rows": self.rows}


@dataclass(frozen=True)
class Plan:
    """What every arm replays: the history, where the replay starts, the delay of labels
    and the pass interval (all in seconds)."""

    history: History
    config: Config
    start: int  # rows before it train the initial model; replay begins there
    label_delay: float
    interval: float
    workdir: Path
    mlflow_template: Path | None = None  # an empty MLflow database, migrated once

    @property
    def pass_times(self) -> np.ndarray:
        times = self.history.times
        first, last = float(times[self.start]), float(times[-1])
        count = int(np.floor((last - first) / self.interval)) + 1
        ticks = first + self.interval * np.arange(count + 1, dtype=float)
        # the last pass sees the last row and every label that arrives before the end
        return ticks[ticks <= last + self.interval]


@dataclass
class ArmRun:
    """What one arm did. Served rows (index into the history): version, route,
    prediction, score; the event log; the costs."""

    arm: Arm
    index: np.ndarray
    version: np.ndarray
    route: np.ndarray
    prediction: np.ndarray
    score: np.ndarray | None
    events: list[Event]
    labels_sent: int
    costs: Costs
    passes: int
    initial_version: int


class _Timer:
    """Accumulates wall seconds spent in calls of one object (the registry): a proxy,
    so every caller (server, controller, trainer, gate) is counted the same way."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0
        self._depth = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started

        return timed


def arm_project(plan: Plan, arm: Arm, clock: ManualClock) -> Project:
    """The project as `arm` runs it, in a folder of its own: the initial rows as its
    reference data, its own registry and store."""
    home = plan.workdir / arm.name.replace(":", "-")
    home.mkdir(parents=True, exist_ok=True)
    if plan.mlflow_template is not None and not (home / "mlflow.db").exists():
        shutil.copyfile(plan.mlflow_template, home / "mlflow.db")
    reference = home / "initial.parquet"
    plan.history.frame.iloc[: plan.start].to_parquet(reference, index=False)
    base = load_config(plan.config.path, environ={"TETHER_HOME": str(home)})
    policy = arm_policy(plan.config.policy, arm)
    data = DataSource(reference=str(reference), holdout_fraction=policy.data.holdout_fraction,
                      seed=policy.data.seed,
                      recent_labeled_rows=policy.data.recent_labeled_rows)
    policy = policy.model_copy(update={"data": data})
    return Project(base.model_copy(update={"policy": policy}), clock=clock)


Progress = Callable[[str, float], None]


def run_arm(plan: Plan, arm: Arm, progress: Progress | None = None) -> ArmRun:
    """Replay `plan` under `arm`; `progress(description, share of history done)`."""
    from starlette.testclient import TestClient

    history = plan.history
    times = history.times
    clock = ManualClock(float(times[plan.start]))
    costs = Costs()
    started = time.perf_counter()
    project = arm_project(plan, arm, clock)
    registry = _Timer(project.registry)
    project.__dict__["registry"] = registry  # the cached property, timed
    mlflow_before = registry.seconds
    first = lifecycle.train(project, reason=f"replay: initial model on rows 0-{plan.start - 1}")
    lifecycle.gate(project, first.version)
    lifecycle.promote(project, first.version, "replay: initial model")
    costs.training += time.perf_counter() - started - (registry.seconds - mlflow_before)
    costs.mlflow += registry.seconds - mlflow_before

    process = apps.replay(project)
    controller = process.controller
    assert controller is not None
    target = history.target
    features = history.frame[history.features]
    truth = history.frame[target].to_numpy()
    n = len(times)
    served: dict[str, list[Any]] = {"index": [], "version": [], "route": [],
                                    "prediction": [], "score": []}
    next_row, next_label, labels_sent, passes = plan.start, plan.start, 0, 0
    next_periodic = float(times[plan.start]) + (arm.every or 0.0)
    rolling = False  # a rollout splits traffic: rows go one request each
    ticks = plan.pass_times
    setup = time.perf_counter()
    with TestClient(process.app, raise_server_exceptions=True) as client:
        costs.setup += time.perf_counter() - setup
        for tick_index, now in enumerate(ticks):
            # rows up to this pass, at their own time while a rollout splits traffic
            end = int(np.searchsorted(times, now, side="right"))
            if end > next_row:
                t0, m0 = time.perf_counter(), registry.seconds
                if rolling:
                    for row in range(next_row, end):
                        clock.now = float(times[row])
                        _predict(client, features, row, row + 1, served, costs)
                else:
                    clock.now = float(now)
                    for lo in range(next_row, end, PREDICT_CHUNK):
                        _predict(client, features, lo, min(end, lo + PREDICT_CHUNK), served,
                                 costs)
                next_row = end
                costs.server += time.perf_counter() - t0 - (registry.seconds - m0)
                costs.mlflow += registry.seconds - m0
            clock.now = float(now)
            due = int(np.searchsorted(times, now - plan.label_delay, side="right"))
            due = min(due, next_row)
            if due > next_label:
                t0 = time.perf_counter()
                ids = [str(i) for i in range(next_label, due)]
                labels = [{"id": pid, "label": float(truth[int(pid)])} for pid in ids]
                for lo in range(0, len(labels), PREDICT_CHUNK):
                    answer = client.post("/feedback",
                                         json={"labels": labels[lo:lo + PREDICT_CHUNK]})
                    _ok(answer, "/feedback")
                    costs.requests += 1
                labels_sent += due - next_label
                next_label = due
                costs.server += time.perf_counter() - t0
            if arm.kind == "periodic" and arm.every is not None and now >= next_periodic:
                while next_periodic <= now:
                    next_periodic += arm.every
                controller.submit(Trigger(TriggerKind.SCHEDULE,
                                          f"every {describe_seconds(arm.every)}", ts=now))
            t0, m0 = time.perf_counter(), registry.seconds
            result = controller.tick()
            rolling = _rolling(result)
            passes += 1
            tick_mlflow = registry.seconds - m0
            t1, m1 = time.perf_counter(), registry.seconds
            controller.worker.join()
            retrain_mlflow = registry.seconds - m1
            costs.training += time.perf_counter() - t1 - retrain_mlflow
            if arm.kind == "periodic":
                m2 = registry.seconds
                _promote_passed(project, controller)
                costs.mlflow += registry.seconds - m2
            costs.controller += t1 - t0 - tick_mlflow
            costs.mlflow += tick_mlflow + retrain_mlflow
            if progress is not None:
                progress(f"{arm.name}: {when(now)[:10]}", min(1.0, (tick_index + 1) / len(ticks)))
    costs.rows = n - plan.start
    events = project.store.events(project.model_name)
    return ArmRun(arm=arm, index=np.asarray(served["index"], dtype=int),
                  version=np.asarray(served["version"], dtype=int),
                  route=np.asarray(served["route"], dtype=object),
                  prediction=np.concatenate(served["prediction"]) if served["prediction"]
                  else np.zeros(0),
                  score=_scores(served["score"]), events=events, labels_sent=labels_sent,
                  costs=costs, passes=passes, initial_version=first.version)


def _predict(client: Any, features: pd.DataFrame, lo: int, hi: int,
             served: dict[str, list[Any]], costs: Costs) -> None:
    frame = features.iloc[lo:hi]
    body = {"dataframe_split": {"columns": list(frame.columns),
                                "data": frame.to_numpy().tolist()},
            "ids": [str(i) for i in range(lo, hi)]}
    answer = client.post("/predict", json=body)
    _ok(answer, "/predict")
    document = answer.json()
    costs.requests += 1
    served["index"].extend(range(lo, hi))
    served["version"].extend([int(document["model_version"])] * (hi - lo))
    served["route"].extend([str(document["route"])] * (hi - lo))
    served["prediction"].append(np.asarray(document["predictions"]))
    served["score"].append(None if document.get("scores") is None
                           else np.asarray(document["scores"], dtype=float))


def _scores(parts: list[np.ndarray | None]) -> np.ndarray | None:
    if not parts or any(p is None for p in parts):
        return None
    return np.concatenate([p for p in parts if p is not None])


def _ok(answer: Any, route: str) -> None:
    if answer.status_code >= 400:
        try:
            body = answer.json()  # every error answer: {"error": kind, "message": ...}
            message = (body.get("message") if isinstance(body, dict) else None) or answer.text
        except ValueError:
            message = answer.text
        raise TetherError(f"replay: {route} answered {answer.status_code}: {message}")


def _promote_passed(project: Project, controller: Any) -> None:
    """The periodic job's last step: a candidate whose gate passed becomes champion."""
    job = controller.worker.last
    if job is None or job.version is None or not job.gate_passed:
        return
    info = project.registry.state().version(job.version)
    if info is None or info.state != State.CANDIDATE:
        return
    lifecycle.promote(project, job.version, f"periodic: gate passed ({job.trigger.reason})")
    push = controller.push
    if push is not None:
        push()


def _rolling(result: Pass) -> bool:
    """Is a rollout under way after this pass (from what it saw and did, without asking
    the registry again)?"""
    rolling = result.observed is not None and result.observed.registry.rollout is not None
    for applied in result.applied:
        if not applied.ok:
            continue
        if isinstance(applied.action, StartRollout | SetStep):
            rolling = True
        elif isinstance(applied.action, Promote | AbortRollout | RollBack):
            rolling = False
    return rolling
