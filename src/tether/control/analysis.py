"""Challenger against champion on the same traffic window: pass, fail or inconclusive.

Pure: the numbers come in, an `Assessment` (`tether.verdict`, the gate's type too) with
its checks goes out. Too little data is inconclusive, never a pass; a challenger fails
only when the data says it is worse with the confidence the policy asks for (`alpha`).
Latency compares the two arms' model CPU time per call over the same window, batch size
by batch size (`tether.latency.compare_cpu_per_call`), so a busy machine does not move
it; the metric's direction comes from `tether.scoring`.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from tether.config import RolloutPolicy
from tether.latency import ceiling_check, compare_cpu_per_call, median_per_call, ratio_check
from tether.scoring import Metric, Task, attempt, metric
from tether.verdict import Assessment, Check, Verdict

__all__ = ["Analysis", "ArmStats", "Improvement", "Verdict", "assess",
           "bootstrap_improvement"]

BOOTSTRAP_RESAMPLES = 300
MAX_BOOTSTRAP_ROWS = 2000

# The analysis of a rollout step is the same kind of result as the gate's.
Analysis = Assessment


@dataclass(frozen=True)
class ArmStats:
    """What one arm (version on a route) did over the analysis window.

    `y_score`: positive-class probabilities (n,) for binary tasks, class probabilities
    (n, k) in `classes` order for multiclass ones; `estimated`: label-free estimates,
    None where undefined. `model_cpu_ms`, `batch_rows`: per served row (m,), the CPU
    milliseconds and row count of the model call that answered it (NaN where unknown);
    `latency_*_ms`: served wall clock."""

    version: int
    route: str
    predictions: int
    errors: int = 0
    latency_p99_ms: float = 0.0
    latency_p50_ms: float = 0.0
    labels: int = 0
    y_true: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_pred: np.ndarray = field(default_factory=lambda: np.empty(0))
    y_score: np.ndarray | None = None
    classes: Sequence[Any] | None = None
    estimated: Mapping[str, float | None] = field(default_factory=dict)
    model_cpu_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    batch_rows: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def error_rate(self) -> float:
        return self.errors / self.predictions if self.predictions else 0.0

    @property
    def model_cpu_p50_ms(self) -> float | None:
        """Median model CPU ms per call (each call counted once), None if unmeasured."""
        return median_per_call(self.model_cpu_ms, self.batch_rows)

    def summary(self) -> dict[str, Any]:
        cpu = self.model_cpu_p50_ms
        return {"version": self.version, "route": self.route, "predictions": self.predictions,
                "errors": self.errors, "error_rate": round(self.error_rate, 6),
                "model_cpu_p50_ms": None if cpu is None else round(cpu, 4),
                "latency_p50_ms": round(self.latency_p50_ms, 3),
                "latency_p99_ms": round(self.latency_p99_ms, 3), "labels": self.labels,
                "estimated": dict(self.estimated)}


@dataclass(frozen=True)
class Improvement:
    """The challenger's improvement over the champion (positive = better, in the
    metric's direction) with its (1 - alpha) bootstrap interval; None where undefined."""

    challenger: float | None
    champion: float | None
    point: float | None
    lower: float | None
    upper: float | None
    reason: str | None = None


def _value(chosen: Metric, arm: ArmStats, index: np.ndarray | slice,
           ) -> tuple[float | None, str | None]:
    score = arm.y_score[index] if arm.y_score is not None else None
    return attempt(lambda: chosen.from_rows(arm.y_true[index], arm.y_pred[index], score,
                                            classes=arm.classes))


def bootstrap_improvement(chosen: Metric, challenger: ArmStats, champion: ArmStats,
                          alpha: float, seed: int = 0) -> Improvement:
    """Point estimate and (1 - alpha) two-sided percentile interval of the challenger's
    improvement; resamples where the metric is undefined are left out.

    sklearn has no interval for a difference of two metrics on independent samples, so
    both arms are resampled together here.
    """
    # The most recent labels of each arm, at most MAX_BOOTSTRAP_ROWS: an interval on
    # 2,000 rows is already narrower than any margin a policy sets, and the resampling
    # stays well under a second.
    mine_rows = slice(max(0, challenger.labels - MAX_BOOTSTRAP_ROWS), challenger.labels)
    theirs_rows = slice(max(0, champion.labels - MAX_BOOTSTRAP_ROWS), champion.labels)
    mine, mine_reason = _value(chosen, challenger, mine_rows)
    theirs, theirs_reason = _value(chosen, champion, theirs_rows)
    if mine is None or theirs is None:
        reason = (f"undefined for the challenger ({mine_reason})" if mine is None
                  else f"undefined for the champion ({theirs_reason})")
        return Improvement(mine, theirs, None, None, None, reason)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        a = rng.integers(mine_rows.start, mine_rows.stop, mine_rows.stop - mine_rows.start)
        b = rng.integers(theirs_rows.start, theirs_rows.stop,
                         theirs_rows.stop - theirs_rows.start)
        resampled_mine, _ = _value(chosen, challenger, a)
        resampled_theirs, _ = _value(chosen, champion, b)
        if resampled_mine is not None and resampled_theirs is not None:
            draws.append(chosen.improvement(resampled_mine, resampled_theirs))
    point = chosen.improvement(mine, theirs)
    if not draws:
        return Improvement(mine, theirs, point, None, None,
                           "undefined on every resample")
    lower, upper = np.quantile(np.asarray(draws), [alpha / 2, 1 - alpha / 2])
    return Improvement(mine, theirs, point, float(lower), float(upper))


def _error_check(challenger: ArmStats, policy: RolloutPolicy) -> Check:
    rate = challenger.error_rate
    if rate <= policy.max_error_rate:
        return Check("error_rate", Verdict.PASS,
                     f"error rate {rate:.4f} <= max_error_rate {policy.max_error_rate}",
                     value=rate, threshold=policy.max_error_rate)
    test = stats.binomtest(challenger.errors, challenger.predictions, policy.max_error_rate,
                           alternative="greater")
    text = (f"error rate {rate:.4f} > max_error_rate {policy.max_error_rate:.4f} "
            f"(binomial p={test.pvalue:.4f})")
    return Check("error_rate", Verdict.FAIL if test.pvalue < policy.alpha
                 else Verdict.INCONCLUSIVE, text, value=rate,
                 threshold=policy.max_error_rate)


def _latency_checks(challenger: ArmStats, champion: ArmStats, policy: RolloutPolicy,
                    same_window: bool) -> tuple[list[Check], dict[str, Any]]:
    checks = []
    numbers: dict[str, Any] = {}
    if same_window and champion.predictions > 0:
        # CPU time of the model calls, not the served wall clock: a loaded machine
        # stretches the wall clock of both arms unevenly (queueing, batching, which arm
        # a burst hit), but not the CPU a call needs
        found = compare_cpu_per_call(challenger.model_cpu_ms, challenger.batch_rows,
                                     champion.model_cpu_ms, champion.batch_rows)
        numbers["model_cpu"] = found.as_dict()
        if found.ratio is None or found.challenger_ms is None or found.champion_ms is None:
            checks.append(Check("latency_ratio", Verdict.PASS,
                                f"no CPU time ratio: {found.reason}; the p99 ceiling "
                                "still applies"))
        else:
            checks.append(ratio_check(
                found.challenger_ms, found.champion_ms, max_ratio=policy.max_latency_ratio,
                what=f"model CPU time per call, {found.calls} calls in {found.strata} "
                     f"batch size{'s' if found.strata != 1 else ''} both arms served"))
    measured = champion.predictions > 0 and champion.latency_p50_ms > 0
    checks.append(ceiling_check(
        challenger.latency_p99_ms,
        champion.latency_p99_ms if same_window and measured else None,
        ceiling_ms=policy.max_p99_latency_ms, what="p99 of served requests", robust=False))
    return checks, numbers


def _metric_check(challenger: ArmStats, champion: ArmStats, policy: RolloutPolicy,
                  chosen: Metric, estimate_rejects: bool, same_window: bool,
                  ) -> tuple[Check, dict[str, Any]]:
    margin = policy.max_metric_drop
    # a probation's baseline is the version that served before, no longer the champion
    arms = ("champion -> challenger" if same_window
            else f"version {champion.version} -> version {challenger.version}")
    primary = chosen.name
    enough = min(challenger.labels, champion.labels) >= max(policy.min_labels, 2)
    if enough:
        found = bootstrap_improvement(chosen, challenger, champion, policy.alpha)
        numbers = {"metric": primary, "direction": chosen.direction.value,
                   "challenger_value": found.challenger, "champion_value": found.champion,
                   "improvement": found.point, "ci_lower": found.lower,
                   "ci_upper": found.upper, "labels": [challenger.labels, champion.labels]}
        if found.point is None or found.lower is None or found.upper is None:
            return Check("metric", Verdict.INCONCLUSIVE,
                         f"{primary} {found.reason} on this window"), numbers
        text = (f"{primary} {chosen.format(found.champion)} -> "
                f"{chosen.format(found.challenger)} ({arms}), "
                f"{chosen.words(found.point)}; {1 - policy.alpha:.0%} CI of the improvement "
                f"[{found.lower:+.4g}, {found.upper:+.4g}] on "
                f"{challenger.labels}/{champion.labels} labels")
        if found.upper < -margin:
            return Check("metric", Verdict.FAIL,
                         f"{text}: worse by more than max_metric_drop {margin}",
                         value=found.point, threshold=-margin), numbers
        return Check("metric", Verdict.PASS, text, value=found.point,
                     threshold=-margin), numbers
    mine, theirs = challenger.estimated.get(primary), champion.estimated.get(primary)
    if mine is not None and theirs is not None and math.isfinite(mine + theirs):
        gain = chosen.improvement(mine, theirs)
        numbers = {"metric": primary, "direction": chosen.direction.value,
                   "estimated_improvement": gain}
        text = f"estimated {chosen.change(theirs, mine)} ({arms}; labels too few)"
        if gain < -margin:
            text = f"{text}: worse by more than max_metric_drop {margin}"
            if policy.min_labels > 0 and not estimate_rejects:
                # The estimate assumes the champion's calibration still holds, so it
                # cannot see concept drift, the usual reason for a retrain: when labels
                # are expected, they decide a rejection (or the step deadline does).
                return (Check("metric", Verdict.INCONCLUSIVE,
                              f"{text}; waiting for {policy.min_labels} labels per arm to "
                              "decide", value=gain, threshold=-margin), numbers)
            return Check("metric", Verdict.FAIL, text, value=gain, threshold=-margin), numbers
        return Check("metric", Verdict.PASS, text, value=gain, threshold=-margin), numbers
    if policy.min_labels == 0:
        return Check("metric", Verdict.PASS, "no labels required"), {}
    return (Check("metric", Verdict.INCONCLUSIVE,
                  f"labels {min(challenger.labels, champion.labels)} < min_labels "
                  f"{policy.min_labels} and no label-free estimate"), {})


def assess(challenger: ArmStats, champion: ArmStats, policy: RolloutPolicy, *,
           primary: str, task: Task | str, min_predictions: int | None = None,
           estimate_rejects: bool = False, same_window: bool = True) -> Assessment:
    """One analysis of a rollout step (or of a probation).

    While labels are expected (`policy.min_labels` > 0) a worse label-free estimate
    alone is inconclusive, unless `estimate_rejects`: probation sets it, since rolling
    back returns to the version that served before and is the safe way to be wrong.
    `same_window`: both arms served over the same period (a canary, a shadow); a
    probation compares with the old champion's earlier window, so latency then has no
    ratio, and a p99 above the ceiling is inconclusive (the machine or the model?), never
    a rollback: the gate and the canary compared latency side by side before.
    """
    chosen = metric(task, primary)
    needed = policy.min_predictions if min_predictions is None else min_predictions
    numbers: dict[str, Any] = {"challenger": challenger.summary(),
                               "champion": champion.summary()}
    if challenger.predictions < needed:
        return Assessment([Check("sample", Verdict.INCONCLUSIVE,
                                 f"predictions {challenger.predictions} < min_predictions "
                                 f"{needed}", value=challenger.predictions,
                                 threshold=needed)], numbers)
    latency_checks, latency_numbers = _latency_checks(challenger, champion, policy,
                                                      same_window)
    checks = [_error_check(challenger, policy), *latency_checks]
    numbers.update(latency_numbers)
    check, metric_numbers = _metric_check(challenger, champion, policy, chosen,
                                          estimate_rejects, same_window)
    checks.append(check)
    numbers.update(metric_numbers)
    return Assessment(checks, numbers)
