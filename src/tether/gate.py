"""Challenger against champion on the same data: an `Assessment` with every number behind it.

`assess` is pure; `run_gate` loads both models, scores them on the same rows, times them
against each other (`tether.latency`) and writes the assessment to the registry
(`tether.gate`) and the event log. Directions come from the metric (`tether.scoring`):
a lower RMSE is an improvement, and the messages say so.

>>> from tether.config import GatePolicy
>>> from tether.scoring import Scores
>>> policy = GatePolicy(min_delta=0.02, floors={"roc_auc": 0.7})
>>> result = assess(Scores({"roc_auc": 0.81}), Scores({"roc_auc": 0.80}),
...                 task="binary_classification", primary="roc_auc", policy=policy)
>>> result.passed, [check.message for check in result.failed]  # doctest: +NORMALIZE_WHITESPACE
(False, ['roc_auc 0.8000 -> 0.8100 (champion -> challenger), 0.0100 better;
          short of min_delta 0.0200'])
>>> result = assess(Scores({"rmse": 54.2}), Scores({"rmse": 56.1}), task="regression",
...                 primary="rmse", policy=GatePolicy())
>>> result.passed, result.message
(True, 'rmse 56.1 -> 54.2 (champion -> challenger), 1.9 better; meets min_delta 0')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tether.classes import ClassCodes, model_classes
from tether.config import GatePolicy
from tether.errors import (
    DataError,
    InvalidTransition,
    ReferenceMissing,
    TetherError,
    VersionNotFound,
)
from tether.events import EventKind
from tether.latency import Timing, ceiling_check, ratio_check, time_interleaved
from tether.outputs import window_features
from tether.project import Project
from tether.registry import LoadedModel, State
from tether.scoring import Scores, Task, evaluate, metric
from tether.threads import limited, training_threads
from tether.verdict import Assessment, Check, Verdict

__all__ = ["assess", "latest_candidate", "run_gate", "score_model"]


def _floor_check(task: Task, name: str, limit: float, scores: Scores) -> Check:
    chosen = metric(task, name)
    value = scores.get(name)
    check = f"{chosen.limit_name}:{name}"
    if value is None:
        why = scores.reason(name) or "not computed"
        return Check(check, Verdict.INCONCLUSIVE,
                     f"{name} undefined on these rows ({why}), so its {chosen.limit_name} "
                     f"{chosen.format(limit)} cannot be checked", threshold=limit)
    verdict = Verdict.FAIL if chosen.worse(value, limit) else Verdict.PASS
    return Check(check, verdict, chosen.against(value, limit), value=value, threshold=limit)


def _champion_check(task: Task, primary: str, mine: Scores, theirs: Scores,
                    min_delta: float) -> Check:
    chosen = metric(task, primary)
    check = f"beats_champion:{primary}"
    for who, scores in (("challenger", mine), ("champion", theirs)):
        if scores.get(primary) is None:
            why = scores.reason(primary) or "not computed"
            return Check(check, Verdict.INCONCLUSIVE,
                         f"{primary} undefined for the {who} on these rows ({why})",
                         threshold=min_delta)
    challenger, champion = float(mine[primary] or 0.0), float(theirs[primary] or 0.0)
    gain = chosen.improvement(challenger, champion)
    passed = gain >= min_delta
    return Check(check, Verdict.PASS if passed else Verdict.FAIL,
                 f"{primary} {chosen.format(champion)} -> {chosen.format(challenger)} "
                 f"(champion -> challenger), {chosen.words(gain)}; "
                 f"{'meets' if passed else 'short of'} min_delta {chosen.format(min_delta)}",
                 value=gain, threshold=min_delta)


def _latency_checks(latency: Mapping[str, Timing], policy: GatePolicy) -> list[Check]:
    mine = latency["challenger"]
    theirs = latency.get("champion")
    what = (f"CPU time per call of {policy.latency_batch_rows} row(s), median of "
            f"{mine.calls} interleaved calls")
    checks = []
    if theirs is not None:
        checks.append(ratio_check(mine.cpu_ms, theirs.cpu_ms,
                                  max_ratio=policy.max_latency_ratio, what=what))
    checks.append(ceiling_check(mine.cpu_ms, None, ceiling_ms=policy.max_latency_ms,
                                what=what))
    return checks


def assess(challenger: Scores, champion: Scores | None, *, task: Task | str, primary: str,
           policy: GatePolicy, latency: Mapping[str, Timing] | None = None) -> Assessment:
    """Decide from scores and timings alone. With no champion, the floors and the
    latency ceiling decide. A metric the rows do not define is inconclusive, which does
    not pass."""
    kind = Task(task)
    checks = [_floor_check(kind, name, limit, challenger)
              for name, limit in policy.floors.items()]
    if champion is not None:
        checks.append(_champion_check(kind, primary, challenger, champion, policy.min_delta))
    if latency is not None:
        checks += _latency_checks(latency, policy)
    chosen = metric(kind, primary)
    return Assessment(checks, {"metric": {"primary": primary,
                                          "direction": chosen.direction.value}})


# scoring -----------------------------------------------------------------------------

def _features(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c == target or c.startswith("_")])


def _classes(model: LoadedModel) -> Sequence[Any] | None:
    return model_classes(model)


def score_model(model: LoadedModel, frame: pd.DataFrame, target: str,
                task: Task | str) -> Scores:
    """Every metric of the task for `model` on the labeled rows of `frame`; probabilities
    from `predict_proba` where the model has it (binary: the positive class's column;
    multiclass: every column, in the model's `classes_` order)."""
    kind = Task(task)
    features = _features(frame, target)
    with limited(training_threads()):
        predictions = np.asarray(model.predict(features))
        proba = (np.asarray(model.predict_proba(features))
                 if model.predict_proba is not None and kind.classification else None)
    truth = frame[target].to_numpy()
    classes = _classes(model)
    scores: np.ndarray | None = None
    if proba is not None and kind is Task.BINARY:
        scores = proba[:, -1] if proba.ndim == 2 else proba
    elif proba is not None and kind is Task.MULTICLASS and proba.ndim == 2:
        scores = proba
    if kind is Task.BINARY and classes:
        codes = ClassCodes(classes, multiclass=False)  # 1.0: classes_[1], the scored one
        truth, predictions = codes.encode(truth), codes.encode(predictions)
    elif kind is not Task.MULTICLASS:
        truth, predictions = truth.astype(float), predictions.astype(float)
    return evaluate(kind, truth, predictions, scores, classes=classes)


def _score_or_say_why(model: LoadedModel, frame: pd.DataFrame, target: str, task: Task,
                      role: str, segment: str) -> Scores:
    """`score_model`, or a DataError (exit 2: the gate could not run, which is not a lost
    gate) naming the version and, when the model's signature says so, the columns the
    rows lack."""
    try:
        return score_model(model, frame, target, task)
    except TetherError:
        raise
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        why = lines[0] if lines else type(exc).__name__
        lacking = [c.name for c in (model.columns or []) if c.name not in frame.columns]
        if lacking:
            why = (f"it takes column(s) {', '.join(lacking[:5])}"
                   f"{' ...' if len(lacking) > 5 else ''} that the rows do not have")
        raise DataError(f"the gate could not run: the {role} (version {model.version}) "
                        f"cannot score the {len(frame)} {segment} rows: {why}") from exc


def _evaluation_data(project: Project, version: int) -> tuple[pd.DataFrame, str]:
    """The challenger's holdout plus labels that arrived after it was trained. A version
    registered by plain MLflow has no holdout of its own: the reference data's, split
    as every retrain splits it, stands in."""
    registry = project.registry
    target = project.policy.model.target
    try:
        holdout = registry.reference_frame(version, "holdout")
    except ReferenceMissing:
        from tether.training import load_reference, split_reference

        _, holdout = split_reference(project, load_reference(project))
        holdout = holdout.assign(_segment="holdout")
    holdout = holdout.drop(columns=[c for c in holdout.columns  # scores of training time
                                    if c in ("_prediction", "_score")
                                    or str(c).startswith("_proba_")])
    created = _trained_at(project, version)
    features = [c for c in holdout.columns if c != target and not c.startswith("_")]
    live = project.store.prediction_window(project.model_name, since=created,
                                           limit=project.policy.monitoring.window_size,
                                           labeled_only=True)
    served = window_features(live)
    if not live.empty and set(features) <= set(served.columns):
        from tether.training import stored_labels

        shadow = (live["route"] == "shadow").to_numpy()
        live, served = live[~shadow], served[~shadow]
        rows = served[features].assign(**{target: stored_labels(project, live),
                                        "_segment": "live"})
        holdout = pd.concat([holdout, rows], ignore_index=True)
    current = holdout[holdout["_segment"].isin(["recent", "live"])]
    if len(current) >= project.policy.monitoring.min_labels:
        return current, "recent"
    return holdout, "holdout"


def _trained_at(project: Project, version: int) -> float:
    """When `version` was trained, by the project's clock (its `trained` event); the
    registry's own creation time for a version trained elsewhere."""
    trained = project.store.events(project.model_name, kinds=[EventKind.TRAINED])
    for event in reversed(trained):
        if event.version == version:
            return event.ts
    return project.registry.version(version).created_at


def latest_candidate(project: Project) -> int:
    state = project.registry.state()
    candidates = [v.version for v in state.versions if v.state == State.CANDIDATE]
    if not candidates:
        raise VersionNotFound("no candidate version to gate; run `tether retrain` first, "
                              "or pass --version N")
    return max(candidates)


def run_gate(project: Project, version: int | None = None) -> Assessment:
    """Score the challenger and the champion on the same rows, time them against each
    other, record and return the assessment."""
    registry = project.registry
    policy = project.policy
    number = version if version is not None else latest_candidate(project)
    info = registry.version(number)
    state = registry.state()
    if state.champion == number:
        raise InvalidTransition(f"version {number} is already the champion; nothing to gate")
    task = policy.model.task
    target = policy.model.target
    data, segment = _evaluation_data(project, number)
    challenger = registry.load_model(number)
    champion = registry.load_model(state.champion) if state.champion is not None else None
    challenger_scores = _score_or_say_why(challenger, data, target, task, "challenger",
                                          segment)
    champion_scores = (_score_or_say_why(champion, data, target, task, "champion", segment)
                       if champion is not None else None)
    batch = _features(data, target).head(policy.gate.latency_batch_rows)
    calls = {"challenger": lambda: challenger.predict(batch)}
    if champion is not None:
        serving = champion
        calls["champion"] = lambda: serving.predict(batch)
    latency = time_interleaved(calls)
    result = assess(challenger_scores, champion_scores, task=task,
                    primary=policy.metric.primary, policy=policy.gate, latency=latency)
    scores = {"challenger": dict(challenger_scores)}
    undefined = {"challenger": challenger_scores.reasons}
    if champion_scores is not None:
        scores["champion"] = dict(champion_scores)
        undefined["champion"] = champion_scores.reasons
    result = result.with_numbers(
        version=number, champion=state.champion, segment=segment, rows=len(data),
        scores=scores, undefined=undefined,
        latency={"rows_per_call": len(batch), "threads": 1,
                 **{who: timing.as_dict() for who, timing in latency.items()}})
    registry.set_gate(number, result.as_dict())
    if result.passed:
        if info.state == State.REJECTED:
            registry.set_state(number, State.CANDIDATE, "gate " + result.summary)
    else:
        registry.set_state(number, State.REJECTED, "gate " + result.summary)
    project.record(EventKind.GATE_PASSED if result.passed else EventKind.GATE_FAILED,
                   result.summary, version=number, data=result.as_dict())
    return result
