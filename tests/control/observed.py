"""Observed snapshots built by hand, for plan-level tests: no registry, no store, no I/O.

Arms hold real numbers (labels, predictions, scores drawn from a seeded generator), so
the analysis the plan runs is the one production runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from tests.conftest import EXAMPLE
from tether.config import Policy, parse_policy
from tether.control.analysis import ArmStats
from tether.control.observe import Observed, ProbationWindow, RolloutWindow
from tether.control.status import Condition, ControllerStatus
from tether.monitoring.drift import DriftReport
from tether.monitoring.live import MetricEstimate
from tether.monitoring.monitor import Snapshot
from tether.registry import RegistryState, RolloutSpec, VersionInfo

MODEL = "loan-default"
NOW = 1_000_000.0


def policy(**overrides: Any) -> Policy:
    """The example project's policy with dotted overrides."""
    raw = yaml.safe_load((EXAMPLE / "tether.yaml").read_text())
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return parse_policy(raw, "test policy")


def version(number: int, state: str, *, passed: bool | None = None, roc_auc: float = 0.8,
            aliases: tuple[str, ...] = ()) -> VersionInfo:
    gate = None if passed is None else {"passed": passed,
                                        "scores": {"challenger": {"roc_auc": roc_auc}}}
    return VersionInfo(version=number, state=state, reason="", run_id=None,
                       created_at=NOW - 86_400 + number, aliases=aliases, gate=gate, tags={})


def registry(*versions: VersionInfo, champion: int | None = None, previous: int | None = None,
             rollout: RolloutSpec | None = None,
             challenger: int | None = None) -> RegistryState:
    return RegistryState(model_name=MODEL, champion=champion,
                         challenger=rollout.version if rollout else challenger,
                         previous=previous, rollout=rollout, versions=tuple(versions))


def arm(number: int, route: str, predictions: int, *, labels: int | None = None,
        errors: int = 0, quality: float = 1.0, seed: int = 0, latency_ms: float = 5.0,
        estimated: dict[str, float] | None = None) -> ArmStats:
    """`predictions` served, `labels` of them labeled (default: all that did not fail);
    `quality` 1.0 scores well, 0.0 no better than chance, negative worse than chance."""
    rng = np.random.default_rng(seed)
    n = predictions - errors if labels is None else labels
    truth = rng.integers(0, 2, n).astype(float)
    noise = rng.normal(0.0, 0.35, n)
    score = np.clip(0.5 + quality * (truth - 0.5) * 0.8 + noise * 0.5, 0.0, 1.0)
    return ArmStats(version=number, route=route, predictions=predictions, errors=errors,
                    latency_p99_ms=latency_ms, labels=n, y_true=truth,
                    y_pred=(score >= 0.5).astype(float), y_score=score,
                    estimated=estimated or {})


def canary(step: int = 0, *, weight: float | None = None, started: float = NOW - 60,
           mode: str = "canary", number: int = 2) -> RolloutSpec:
    steps = [0.1, 0.5]
    return RolloutSpec(version=number, mode=mode,  # type: ignore[arg-type]
                       weight=0.0 if mode == "shadow" else (weight or steps[step]),
                       step=step, started_at=started)


def rolling(spec: RolloutSpec, challenger: ArmStats, champion: ArmStats,
            **extra: Any) -> Observed:
    state = registry(version(1, "champion", passed=True, aliases=("champion",)),
                     version(spec.version, spec.mode, passed=True, aliases=("challenger",)),
                     champion=1, rollout=spec)
    return Observed(registry=state, rollout=RolloutWindow(spec, challenger, champion), **extra)


def on_probation(current: ArmStats, baseline: ArmStats, *, started: float,
                 **extra: Any) -> Observed:
    state = registry(version(1, "retired", passed=True, aliases=("previous",)),
                     version(2, "champion", passed=True, aliases=("champion",)),
                     champion=2, previous=1)
    window = ProbationWindow(version=2, previous=1, started=started, current=current,
                             baseline=baseline)
    return Observed(registry=state, probation=window, **extra)


def serving(**extra: Any) -> Observed:
    """v1 champion, nothing else going on."""
    state = registry(version(1, "champion", passed=True, aliases=("champion",)), champion=1)
    return Observed(registry=state, **extra)


def snapshot(*, share: float | None = 0.1, roc_auc: tuple[float, float, float] | None = None,
             labels: int = 500, change: bool = False, number: int = 1) -> Snapshot:
    """The champion's live picture: drift share, live ROC AUC (value, lower, upper)."""
    drift = DriftReport(rows_reference=1000, rows_current=800, features=[],
                        share_drifted=share, drifted=bool(share and share > 0.5),
                        share_threshold=0.5, alpha=0.05, enough_data=share is not None,
                        reason=None if share is not None else "not enough data")
    live = {} if roc_auc is None else {"roc_auc": MetricEstimate(*roc_auc, n=labels)}
    return Snapshot(model=MODEL, version=number, route="champion", ts=NOW,
                    window_start=NOW - 600,
                    window_end=NOW, n_predictions=800, n_labels=labels, label_coverage=0.6,
                    error_rate=0.0, latency_p99_ms=5.0, live=live, estimated={}, drift=drift,
                    change={"error": change, "estimate": False},
                    enough_data={"drift": share is not None})


def status(*conditions: Condition, pruned_at: float | None = NOW - 10) -> ControllerStatus:
    return ControllerStatus(model=MODEL, ts=NOW - 10, owner="test", conditions=conditions,
                            pruned_at=pruned_at)
