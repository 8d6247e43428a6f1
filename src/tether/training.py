"""Run the user's trainer and register what it returns as a candidate version.

The trainer is a plain function `train(ctx) -> model`; tether loads the data, splits a
holdout, opens the MLflow run (the trainer may log into it: `ctx.log_metrics(...,
step=round)`), scores the holdout, logs metrics, signature, input example and reference
snapshot, and registers a new version tagged `candidate`. A training that fails marks
its run failed and registers nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tether.classes import ClassCodes, VersionClasses, model_classes, version_classes
from tether.config import Task
from tether.errors import DataError, TetherError, TrainingError
from tether.events import EventKind
from tether.monitoring.profile import Profile
from tether.monitoring.reference import PROBA, PROFILE_FILE, reference_profile
from tether.outputs import window_features
from tether.project import Project
from tether.registry import TrainingRun
from tether.scoring import evaluate
from tether.tables import read_table
from tether.threads import limited, training_threads

__all__ = ["TrainContext", "TrainResult", "load_reference", "load_trainer", "predict_scores",
           "retrain"]

SEGMENT = "_segment"
MAX_REFERENCE_ROWS = 50_000


Progress = Callable[[str, int, int | None], None]


@dataclass
class TrainContext:
    """What a trainer gets: the training rows, the target's name, the parameters, and
    the MLflow run it trains in.

    `log_metrics(metrics, step=round)` and `log_params(params)` log into the version's
    MLflow run while it trains (with its step, e.g. a federated round); `details` lands in
    the result and the `trained` event; `report(description, completed, total)` drives
    the CLI's progress bar.
    """

    data: pd.DataFrame
    target: str
    features: list[str]
    params: dict[str, Any]
    seed: int
    sample_weight: np.ndarray
    recent_rows: int = 0
    project: Project | None = None
    progress: Progress | None = None
    details: dict[str, Any] = field(default_factory=dict)
    run: TrainingRun | None = None

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None,
                    ) -> None:
        """Log metrics into this training's MLflow run now, e.g. one step per federated
        round or epoch: `ctx.log_metrics({"site_a_auc": 0.81}, step=3)`. Undefined and
        non-finite values are left out (MLflow refuses NaN on some stores)."""
        finite = {name: float(value) for name, value in metrics.items()
                  if value is not None and np.isfinite(value)}
        if self.run is not None and finite:
            self.run.log_metrics(finite, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters the trainer chose into this training's MLflow run."""
        if self.run is not None:
            self.run.log_params(params)

    def report(self, description: str, completed: int, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress(description, completed, total)

    @property
    def X(self) -> pd.DataFrame:
        return self.data[self.features]

    @property
    def y(self) -> pd.Series:
        return self.data[self.target]


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    version: int
    metrics: dict[str, float]
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = {"run_id": self.run_id, "model_version": self.version, "metrics": self.metrics,
                "rows": self.rows, "seconds": round(self.seconds, 3)}
        if self.details:
            data["details"] = self.details
        return data


def _resolve(spec: str, project_dir: Path, what: str) -> Callable[..., Any]:
    """`module:function`, looked up first as a file in the project folder."""
    module_name, _, attribute = spec.partition(":")
    candidate = project_dir / (module_name.replace(".", "/") + ".py")
    try:
        if candidate.is_file():
            unique = f"_tether_project_{abs(hash(str(candidate)))}_{module_name}"
            loader_spec = importlib.util.spec_from_file_location(unique, candidate)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.path.insert(0, str(project_dir))
            try:
                loader_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(project_dir))
        else:
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise TrainingError(
            f"{what} {spec!r}: cannot import {module_name!r} "
            f"({type(exc).__name__}: {exc}); looked in {project_dir} and on sys.path") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise TrainingError(f"{what} {spec!r}: module {module_name!r} has no function "
                            f"{attribute!r}")
    return function


def load_trainer(project: Project) -> Callable[[TrainContext], Any]:
    return _resolve(project.policy.trainer, project.settings.project_dir, "trainer")


def load_reference(project: Project) -> pd.DataFrame:
    """The reference/training data the policy names: a CSV/Parquet file or a generator."""
    source = project.policy.data
    target = project.policy.model.target
    if source.generator is not None:
        generator = _resolve(source.generator, project.settings.project_dir, "data generator")
        try:
            frame = generator(**source.params)
        except Exception as exc:
            raise DataError(f"data generator {source.generator!r} raised "
                            f"{type(exc).__name__}: {exc}") from exc
    else:
        assert source.reference is not None
        frame = read_table(project.settings.project_dir / source.reference)
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise DataError("reference data is empty; it needs rows with features and the target")
    if target not in frame.columns:
        raise DataError(f"reference data has no target column {target!r} (model.target); "
                        f"columns: {', '.join(map(str, frame.columns))}")
    return frame


def recent_labeled(project: Project, features: list[str]) -> pd.DataFrame:
    """The most recent labeled predictions of any served version, as training rows."""
    limit = project.policy.data.recent_labeled_rows
    if limit == 0:
        return pd.DataFrame(columns=[*features, project.policy.model.target])
    window = project.store.prediction_window(project.model_name, limit=limit,
                                             labeled_only=True)
    window = window[window["route"] != "shadow"] if not window.empty else window
    served = window_features(window)
    if window.empty or not set(features) <= set(served.columns):
        return pd.DataFrame(columns=[*features, project.policy.model.target])
    rows = served[features].copy()
    rows[project.policy.model.target] = stored_labels(project, window)
    return rows


def stored_labels(project: Project, window: pd.DataFrame) -> np.ndarray:
    """The labels of a window read from the store as the classes they stand for (a
    classifier's labels are kept as class indices; each is read with the class list of
    the version that made the prediction); a regressor's as the numbers they are."""
    labels = window["label"].to_numpy()
    if not project.policy.model.task.classification or window.empty:
        return labels
    classes = VersionClasses(partial(version_classes, project.registry),
                             multiclass=project.policy.model.task is Task.MULTICLASS)
    found = classes.decode(window["model_version"].to_numpy(), labels)
    # numeric classes come back as numbers (an object column would read as no classes)
    return pd.Series(found).infer_objects().to_numpy()


def predict_scores(model: Any, frame: pd.DataFrame, *, multiclass: bool = False
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and, for a classifier with `predict_proba`, the positive-class score
    (n,) of a two-class model or the class probabilities (n, k) of a multiclass one
    (`multiclass`: also when the model saw only two of the task's classes)."""
    predictions = np.asarray(model.predict(frame))
    proba = getattr(model, "predict_proba", None)
    if proba is None:
        return predictions, None
    scores = np.asarray(proba(frame))
    if scores.ndim == 2 and (scores.shape[1] > 2 or multiclass):
        return predictions, scores
    return predictions, scores[:, -1] if scores.ndim == 2 else scores


def _split(frame: pd.DataFrame, target: str, fraction: float, seed: int,
           stratify: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = frame[target] if stratify and frame[target].value_counts().min() >= 2 else None
    train, holdout = train_test_split(frame, test_size=fraction, random_state=seed,
                                      stratify=labels)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def retrain(project: Project, reason: str = "manual",
            params: dict[str, Any] | None = None,
            progress: Progress | None = None) -> TrainResult:
    """Train, score, log and register one candidate version."""
    started = time.perf_counter()
    policy = project.policy
    target = policy.model.target
    reference = load_reference(project)
    features = [c for c in reference.columns if c != target]
    trainer = load_trainer(project)
    task = policy.model.task
    seed = policy.data.seed

    ref_train, ref_holdout = _split(reference, target, policy.data.holdout_fraction, seed,
                                    task.classification)
    recent = recent_labeled(project, features)
    recent_train = recent.iloc[: int(len(recent) * 0.7)]
    recent_holdout = recent.iloc[len(recent_train):]
    train_rows = (pd.concat([ref_train, recent_train], ignore_index=True)
                  if len(recent_train) else ref_train)
    weight = np.ones(len(train_rows))
    if len(recent_train):
        # Recent rows carry as much weight in total as the whole reference: they describe
        # the world the model is about to serve.
        weight[len(ref_train):] = len(ref_train) / len(recent_train)
    all_params = {**policy.trainer_params, **(params or {})}
    rows = {"train": len(train_rows), "holdout": len(ref_holdout) + len(recent_holdout),
            "recent": len(recent)}
    run_params = {"trainer": policy.trainer, "reason": reason, "seed": seed, **all_params,
                  **{f"rows_{k}": v for k, v in rows.items()}}
    with project.registry.training_run(params=run_params) as run:
        context = TrainContext(data=train_rows, target=target, features=features,
                               params=all_params, seed=seed, sample_weight=weight,
                               recent_rows=len(recent_train), project=project,
                               progress=progress, run=run)
        model = _fit(trainer, context, policy.trainer)
        holdout = ref_holdout.assign(**{SEGMENT: "holdout"})
        if len(recent_holdout):
            holdout = pd.concat([holdout, recent_holdout.assign(**{SEGMENT: "recent"})],
                                ignore_index=True)
        metrics, scored, profile = score_reference(model, train_rows, holdout,
                                                   features=features, target=target,
                                                   task=task)
        snapshot = train_rows.sample(n=min(len(train_rows), MAX_REFERENCE_ROWS),
                                     random_state=seed)
        version = run.register(
            model,
            features=train_rows[features],
            metrics={k: v for k, v in metrics.items() if np.isfinite(v)},
            artifacts={"reference": snapshot.reset_index(drop=True), "holdout": scored},
            files={"training.json": json.dumps({"features": features, "target": target,
                                                "task": policy.model.task.value,
                                                "rows": rows}),
                   PROFILE_FILE: json.dumps(profile.as_dict())},
            reason=reason,
        )
    run_id = run.run_id
    result = TrainResult(run_id=run_id, version=version, metrics=metrics, rows=rows,
                         seconds=time.perf_counter() - started, details=context.details)
    project.record(EventKind.TRAINED, reason, version=version, data=result.as_dict())
    return result


def score_reference(model: Any, train_rows: pd.DataFrame, holdout: pd.DataFrame, *,
                    features: list[str], target: str, task: Task,
                    classes: list[Any] | None = None,
                    ) -> tuple[dict[str, float], pd.DataFrame, Profile]:
    """What a version is judged and monitored against: its holdout metrics
    (`holdout_<metric>`), the holdout scored (`_prediction`, and `_score` or `_proba_<j>`)
    and the profile of `train_rows` with the holdout's calibration. `classes`: the
    model's, when it has no `classes_` of its own (a pyfunc). Raises TrainingError when
    the model cannot predict the holdout."""
    predicted, scores = _score_holdout(model, holdout[features], task is Task.MULTICLASS)
    truth, predictions = holdout[target].to_numpy(), predicted
    labels = model_classes(model) or (list(classes) if classes else None)
    if task is Task.BINARY and labels:
        # the classes as the store keeps them: 1.0 is classes_[1], the positive class,
        # whose probability is the score, whatever the labels are ("yes"/"no", -1/1)
        codes = ClassCodes(labels, multiclass=False)
        truth, predictions = codes.encode(truth), codes.encode(predictions)
    elif task is not Task.MULTICLASS:
        truth, predictions = truth.astype(float), predictions.astype(float)
    holdout_scores = evaluate(task, truth, predictions,
                              scores if task.classification else None, classes=labels)
    metrics = {f"holdout_{k}": v for k, v in holdout_scores.defined().items()}
    scored = holdout.assign(_prediction=predicted if labels else predictions)
    if scores is not None and scores.ndim == 1:
        scored["_score"] = scores
    elif scores is not None:
        scored = scored.assign(**{f"{PROBA}{j}": scores[:, j]
                                  for j in range(scores.shape[1])})
    profile = reference_profile(train_rows, features, scored, target=target,
                                task=task.value, classes=labels)
    return metrics, scored, profile


def split_reference(project: Project, reference: pd.DataFrame,
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference split into training rows and holdout, as every retrain splits it
    (`data.holdout_fraction`, `data.seed`, stratified for classifiers)."""
    policy = project.policy
    return _split(reference, policy.model.target, policy.data.holdout_fraction,
                  policy.data.seed, policy.model.task.classification)


def _fit(trainer: Callable[[TrainContext], Any], context: TrainContext, name: str) -> Any:
    try:
        with limited(training_threads()):
            model = trainer(context)
    except TetherError:
        raise
    except Exception as exc:
        raise TrainingError(f"trainer {name!r} raised {type(exc).__name__}: {exc}") from exc
    if model is None or not callable(getattr(model, "predict", None)):
        raise TrainingError(f"trainer {name!r} returned {type(model).__name__}, which has no "
                            "predict(); return a fitted sklearn-compatible estimator")
    return model


def _score_holdout(model: Any, frame: pd.DataFrame, multiclass: bool
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with limited(training_threads()):
            predictions, scores = predict_scores(model, frame, multiclass=multiclass)
    except Exception as exc:
        raise TrainingError(f"the trained model cannot predict its holdout: "
                            f"{type(exc).__name__}: {exc}") from exc
    if len(predictions) != len(frame):
        raise TrainingError(f"the trained model returned {len(predictions)} predictions for "
                            f"{len(frame)} rows")
    return predictions, scores
