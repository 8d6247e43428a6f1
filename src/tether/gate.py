"""Challenger against champion on the same data: a verdict with every number behind it.

`assess` is pure; `run_gate` loads both models, scores them, measures latency and
writes the verdict to the registry (`tether.gate`) and the event log.

>>> from tether.config import GatePolicy
>>> verdict = assess({"roc_auc": 0.81}, {"roc_auc": 0.80}, latency_p99_ms=3.0,
...     primary="roc_auc", policy=GatePolicy(min_delta=0.02, floors={"roc_auc": 0.7}))
>>> verdict.passed, [rule.message for rule in verdict.failed]
(False, ['roc_auc +0.0100 over champion < min_delta 0.0200'])
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tether.config import GatePolicy
from tether.errors import InvalidTransition, VersionNotFound
from tether.project import Project
from tether.registry import LoadedModel, State
from tether.scoring import LOWER_IS_BETTER, compute_metrics, improvement

__all__ = ["Rule", "Verdict", "assess", "run_gate"]

LATENCY_CALLS = 50


@dataclass(frozen=True)
class Rule:
    name: str
    value: float
    threshold: float
    passed: bool
    message: str


@dataclass
class Verdict:
    version: int
    champion: int | None
    passed: bool
    rules: list[Rule]
    segment: str = "holdout"
    rows: int = 0
    scores: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def failed(self) -> list[Rule]:
        return [rule for rule in self.rules if not rule.passed]

    @property
    def summary(self) -> str:
        if self.passed:
            return "passed: " + "; ".join(rule.message for rule in self.rules)
        return "failed: " + "; ".join(rule.message for rule in self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "champion": self.champion,
            "passed": self.passed,
            "segment": self.segment,
            "rows": self.rows,
            "rules": [asdict(rule) for rule in self.rules],
            "scores": self.scores,
        }


def _floor_rule(metric: str, value: float, floor: float) -> Rule:
    lower_better = metric in LOWER_IS_BETTER
    passed = not math.isnan(value) and (value <= floor if lower_better else value >= floor)
    relation = ("<=" if passed else ">") if lower_better else (">=" if passed else "<")
    kind = "ceiling" if lower_better else "floor"
    return Rule(f"{kind}:{metric}", value, floor, passed,
                f"{metric} {value:.4f} {relation} {kind} {floor:.4f}")


def assess(challenger: dict[str, float], champion: dict[str, float] | None, *,
           latency_p99_ms: float, primary: str, policy: GatePolicy) -> Verdict:
    """Decide from scores alone. With no champion, the floors and latency decide."""
    rules = [_floor_rule(metric, challenger.get(metric, math.nan), floor)
             for metric, floor in policy.floors.items()]
    if champion is not None:
        mine, theirs = challenger.get(primary, math.nan), champion.get(primary, math.nan)
        gain = improvement(primary, mine, theirs)
        passed = not math.isnan(gain) and gain >= policy.min_delta
        relation = ">=" if passed else "<"
        rules.append(Rule(f"beats_champion:{primary}", gain, policy.min_delta, passed,
                          f"{primary} {gain:+.4f} over champion {relation} "
                          f"min_delta {policy.min_delta:.4f}"))
    latency_ok = latency_p99_ms <= policy.max_latency_ms
    rules.append(Rule("latency_p99_ms", latency_p99_ms, policy.max_latency_ms, latency_ok,
                      f"p99 latency {latency_p99_ms:.2f} ms {'<=' if latency_ok else '>'} "
                      f"{policy.max_latency_ms:.2f} ms"))
    return Verdict(version=0, champion=None, passed=all(rule.passed for rule in rules),
                   rules=rules)


def _score(model: LoadedModel, frame: pd.DataFrame, target: str, task: str) -> dict[str, float]:
    features = frame.drop(columns=[c for c in frame.columns
                                   if c == target or c.startswith("_")])
    predictions = model.predict(features)
    scores = None
    if model.predict_proba is not None:
        proba = model.predict_proba(features)
        scores = proba[:, -1] if proba.ndim == 2 else proba
    return compute_metrics(task, frame[target].to_numpy(), predictions, scores)


def _latency_p99_ms(model: LoadedModel, frame: pd.DataFrame, rows: int) -> float:
    batch = frame.head(rows)
    model.predict(batch)  # warm caches before timing
    timings = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        model.predict(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(timings, 99))


def _evaluation_data(project: Project, version: int) -> tuple[pd.DataFrame, str]:
    """The challenger's holdout plus labels that arrived after it was trained."""
    registry = project.registry
    target = project.policy.model.target
    holdout = registry.reference_frame(version, "holdout")
    holdout = holdout.drop(columns=[c for c in ("_prediction", "_score") if c in holdout])
    created = registry.version(version).created_at
    features = [c for c in holdout.columns if c != target and not c.startswith("_")]
    live = project.store.prediction_window(project.model_name, since=created,
                                           limit=project.policy.monitoring.window_size,
                                           labeled_only=True)
    if not live.empty and set(features) <= set(live.columns):
        live = live[live["route"] != "shadow"]
        rows = live[features].assign(**{target: live["label"].to_numpy(), "_segment": "live"})
        holdout = pd.concat([holdout, rows], ignore_index=True)
    current = holdout[holdout["_segment"].isin(["recent", "live"])]
    if len(current) >= project.policy.monitoring.min_labels:
        return current, "recent"
    return holdout, "holdout"


def latest_candidate(project: Project) -> int:
    state = project.registry.state()
    candidates = [v.version for v in state.versions if v.state == State.CANDIDATE]
    if not candidates:
        raise VersionNotFound("no candidate version to gate; run `tether retrain` first, "
                              "or pass --version N")
    return max(candidates)


def run_gate(project: Project, version: int | None = None) -> Verdict:
    """Score the challenger and the champion on the same rows; record and return the verdict."""
    registry = project.registry
    policy = project.policy
    number = version if version is not None else latest_candidate(project)
    info = registry.version(number)
    state = registry.state()
    if state.champion == number:
        raise InvalidTransition(f"version {number} is already the champion; nothing to gate")
    task = policy.model.task.value
    target = policy.model.target
    data, segment = _evaluation_data(project, number)
    challenger = registry.load_model(number)
    challenger_scores = _score(challenger, data, target, task)
    champion_scores = None
    if state.champion is not None:
        champion_scores = _score(registry.load_model(state.champion), data, target, task)
    features = data.drop(columns=[c for c in data.columns if c == target or c.startswith("_")])
    latency = _latency_p99_ms(challenger, features, policy.gate.latency_batch_rows)
    verdict = assess(challenger_scores, champion_scores, latency_p99_ms=latency,
                     primary=policy.metric.primary, policy=policy.gate)
    verdict.version, verdict.champion = number, state.champion
    verdict.segment, verdict.rows = segment, len(data)
    verdict.scores = {"challenger": challenger_scores}
    if champion_scores is not None:
        verdict.scores["champion"] = champion_scores
    registry.set_gate(number, verdict.as_dict())
    if verdict.passed:
        if info.state == State.REJECTED:
            registry.set_state(number, State.CANDIDATE, "gate " + verdict.summary)
    else:
        registry.set_state(number, State.REJECTED, "gate " + verdict.summary)
    project.record("gate_passed" if verdict.passed else "gate_failed", verdict.summary,
                   version=number, data=verdict.as_dict())
    return verdict
