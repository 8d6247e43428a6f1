"""Challenger against champion on the same traffic window: pass, fail or inconclusive.

Pure: the numbers come in, a verdict with its reasons goes out. Too little data is
inconclusive, never a pass; a challenger fails only when the data says it is worse
with the confidence the policy asks for (`alpha`).

>>> import numpy as np
>>> from tether.config import RolloutPolicy
>>> policy = RolloutPolicy(min_predictions=100, min_labels=0, max_error_rate=0.01)
>>> champion = ArmStats(version=1, route="champion", predictions=900, errors=0)
>>> assess(ArmStats(version=2, route="canary", predictions=40, errors=0), champion,
...        policy, primary="roc_auc", task="binary_classification").message
'predictions 40 < min_predictions 100'
>>> result = assess(ArmStats(version=2, route="canary", predictions=200, errors=30), champion,
...                 policy, primary="roc_auc", task="binary_classification")
>>> result.verdict.value, result.message
('fail', 'error rate 0.1500 > max_error_rate 0.0100 (binomial p=0.0000)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from tether.config import RolloutPolicy
from tether.scoring import improvement, metric_value

__all__ = ["Analysis", "ArmStats", "Verdict", "assess", "bootstrap_improvement"]

BOOTSTRAP_RESAMPLES = 300
MAX_BOOTSTRAP_ROWS = 2000


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ArmStats:
    """What one arm (version on a route) did over the analysis window."""

    version: int
    route: str
    predictions: int
    errors: int = 0
    latency_p99_ms: float = 0.0
    labels: int = 0
    y_true: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_pred: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_score: np.ndarray | None = None
    estimated: dict[str, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.predictions if self.predictions else 0.0

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "route": self.route, "predictions": self.predictions,
                "errors": self.errors, "error_rate": round(self.error_rate, 6),
                "latency_p99_ms": round(self.latency_p99_ms, 3), "labels": self.labels,
                "estimated": self.estimated}


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    checks: list[tuple[str, Verdict, str]]
    numbers: dict[str, Any]

    @property
    def message(self) -> str:
        """The reasons that decided the verdict (all of them on a pass)."""
        deciding = [text for _, verdict, text in self.checks if verdict == self.verdict]
        return "; ".join(deciding or [text for _, _, text in self.checks])

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "message": self.message,
                "checks": [{"name": n, "verdict": v.value, "message": m}
                           for n, v, m in self.checks],
                **self.numbers}


def bootstrap_improvement(metric: str, task: str, challenger: ArmStats, champion: ArmStats,
                          alpha: float, seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and (1 - alpha) two-sided interval of the challenger's improvement.

    sklearn has no interval for a difference of two metrics on independent samples, so
    both arms are resampled together here.
    """
    def value(arm: ArmStats, index: np.ndarray | slice) -> float:
        score = arm.y_score[index] if arm.y_score is not None else None
        return metric_value(metric, task, arm.y_true[index], arm.y_pred[index], score)

    # The most recent labels of each arm, at most MAX_BOOTSTRAP_ROWS: an interval on
    # 2,000 rows is already narrower than any margin a policy sets, and the resampling
    # stays well under a second.
    mine_rows = slice(max(0, challenger.labels - MAX_BOOTSTRAP_ROWS), challenger.labels)
    theirs_rows = slice(max(0, champion.labels - MAX_BOOTSTRAP_ROWS), champion.labels)
    point = improvement(metric, value(challenger, mine_rows), value(champion, theirs_rows))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        mine = rng.integers(mine_rows.start, mine_rows.stop, mine_rows.stop - mine_rows.start)
        theirs = rng.integers(theirs_rows.start, theirs_rows.stop,
                              theirs_rows.stop - theirs_rows.start)
        draws.append(improvement(metric, value(challenger, mine), value(champion, theirs)))
    finite = np.asarray([d for d in draws if math.isfinite(d)])
    if finite.size == 0:
        return point, math.nan, math.nan
    lower, upper = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return point, float(lower), float(upper)


def _error_check(challenger: ArmStats, policy: RolloutPolicy) -> tuple[Verdict, str]:
    rate = challenger.error_rate
    if rate <= policy.max_error_rate:
        return Verdict.PASS, f"error rate {rate:.4f} <= max_error_rate {policy.max_error_rate}"
    test = stats.binomtest(challenger.errors, challenger.predictions, policy.max_error_rate,
                           alternative="greater")
    text = (f"error rate {rate:.4f} > max_error_rate {policy.max_error_rate:.4f} "
            f"(binomial p={test.pvalue:.4f})")
    return (Verdict.FAIL if test.pvalue < policy.alpha else Verdict.INCONCLUSIVE), text


def _metric_check(challenger: ArmStats, champion: ArmStats, policy: RolloutPolicy,
                  primary: str, task: str, estimate_rejects: bool,
                  ) -> tuple[Verdict, str, dict[str, Any]]:
    margin = policy.max_metric_drop
    enough = min(challenger.labels, champion.labels) >= max(policy.min_labels, 2)
    if enough:
        point, lower, upper = bootstrap_improvement(primary, task, challenger, champion,
                                                    policy.alpha)
        numbers = {"metric": primary, "improvement": point, "ci_lower": lower,
                   "ci_upper": upper, "labels": [challenger.labels, champion.labels]}
        if math.isnan(point):
            return Verdict.INCONCLUSIVE, f"{primary} undefined on this window", numbers
        text = (f"{primary} {point:+.4f} vs champion, {1 - policy.alpha:.0%} CI "
                f"[{lower:+.4f}, {upper:+.4f}] on {challenger.labels}/{champion.labels} labels")
        if upper < -margin:
            return Verdict.FAIL, f"{text}: worse by more than max_metric_drop {margin}", numbers
        return Verdict.PASS, text, numbers
    mine, theirs = challenger.estimated.get(primary), champion.estimated.get(primary)
    if mine is not None and theirs is not None and math.isfinite(mine + theirs):
        gain = improvement(primary, mine, theirs)
        numbers = {"metric": primary, "estimated_improvement": gain}
        text = f"estimated {primary} {gain:+.4f} vs champion (labels too few)"
        if gain < -margin:
            text = f"{text}: worse by more than max_metric_drop {margin}"
            if policy.min_labels > 0 and not estimate_rejects:
                # The estimate assumes the champion's calibration still holds, so it
                # cannot see concept drift, the usual reason for a retrain: when labels
                # are expected, they decide a rejection (or the step deadline does).
                return (Verdict.INCONCLUSIVE,
                        f"{text}; waiting for {policy.min_labels} labels per arm to decide",
                        numbers)
            return Verdict.FAIL, text, numbers
        return Verdict.PASS, text, numbers
    if policy.min_labels == 0:
        return Verdict.PASS, "no labels required", {}
    return (Verdict.INCONCLUSIVE,
            f"labels {min(challenger.labels, champion.labels)} < min_labels "
            f"{policy.min_labels} and no label-free estimate", {})


def assess(challenger: ArmStats, champion: ArmStats, policy: RolloutPolicy, *,
           primary: str, task: str, min_predictions: int | None = None,
           estimate_rejects: bool = False) -> Analysis:
    """One analysis of a rollout step (or of a probation).

    While labels are expected (`policy.min_labels` > 0) a worse label-free estimate
    alone is inconclusive, unless `estimate_rejects`: probation sets it, since rolling
    back returns to the version that served before and is the safe way to be wrong.
    """
    needed = policy.min_predictions if min_predictions is None else min_predictions
    numbers: dict[str, Any] = {"challenger": challenger.summary(),
                               "champion": champion.summary()}
    if challenger.predictions < needed:
        return Analysis(Verdict.INCONCLUSIVE,
                        [("sample", Verdict.INCONCLUSIVE,
                          f"predictions {challenger.predictions} < min_predictions {needed}")],
                        numbers)
    checks: list[tuple[str, Verdict, str]] = []
    verdict, text = _error_check(challenger, policy)
    checks.append(("error_rate", verdict, text))
    latency_ok = challenger.latency_p99_ms <= policy.max_p99_latency_ms
    checks.append(("latency", Verdict.PASS if latency_ok else Verdict.FAIL,
                   f"p99 latency {challenger.latency_p99_ms:.1f} ms "
                   f"{'<=' if latency_ok else '>'} {policy.max_p99_latency_ms:.1f} ms"))
    verdict, text, metric_numbers = _metric_check(challenger, champion, policy, primary, task,
                                                  estimate_rejects)
    checks.append(("metric", verdict, text))
    numbers.update(metric_numbers)
    verdicts = {verdict for _, verdict, _ in checks}
    overall = (Verdict.FAIL if Verdict.FAIL in verdicts else
               Verdict.INCONCLUSIVE if Verdict.INCONCLUSIVE in verdicts else Verdict.PASS)
    return Analysis(overall, checks, numbers)
