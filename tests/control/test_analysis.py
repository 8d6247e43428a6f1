"""One rollout step's verdict from the numbers of two arms (no registry, no store)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tether.config import RolloutPolicy
from tether.control.analysis import ArmStats, Verdict, assess
from tether.verdict import Check

POLICY = RolloutPolicy(min_predictions=100, min_labels=50, max_metric_drop=0.02)


def arm(version: int, *, accuracy: float | None = None, labels: int = 0,
        estimated: float | None = None, errors: int = 0, predictions: int = 500,
        seed: int = 0) -> ArmStats:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, labels).astype(float)
    wrong = rng.random(labels) > (accuracy if accuracy is not None else 1.0)
    y_pred = np.where(wrong, 1 - y_true, y_true)
    return ArmStats(version=version, route="canary" if version == 2 else "champion",
                    predictions=predictions, errors=errors, latency_p99_ms=5.0,
                    labels=labels, y_true=y_true, y_pred=y_pred,
                    estimated={} if estimated is None else {"accuracy": estimated})


def verdict(challenger: ArmStats, champion: ArmStats, policy: RolloutPolicy = POLICY) -> str:
    return assess(challenger, champion, policy, primary="accuracy",
                  task="binary_classification").verdict.value


def test_labels_decide_when_there_are_enough() -> None:
    champion = arm(1, accuracy=0.9, labels=2000, seed=1)
    assert verdict(arm(2, accuracy=0.9, labels=2000, seed=2), champion) == Verdict.PASS
    assert verdict(arm(2, accuracy=0.6, labels=2000, seed=3), champion) == Verdict.FAIL


def test_a_worse_estimate_waits_for_labels_when_labels_are_expected() -> None:
    """A label-free estimate cannot see concept drift: it may pass a step, but it does
    not reject a challenger on its own while labels are still to come."""
    champion = arm(1, estimated=0.9, labels=10)
    analysis = assess(arm(2, estimated=0.8, labels=10), champion, POLICY,
                      primary="accuracy", task="binary_classification")
    assert analysis.verdict is Verdict.INCONCLUSIVE
    assert "waiting for 50 labels" in analysis.message
    assert verdict(arm(2, estimated=0.95, labels=10), champion) == Verdict.PASS


def test_a_worse_estimate_rejects_when_no_labels_are_expected() -> None:
    label_free = POLICY.model_copy(update={"min_labels": 0})
    champion = arm(1, estimated=0.9)
    assert verdict(arm(2, estimated=0.8), champion, label_free) == Verdict.FAIL
    assert verdict(arm(2, estimated=0.89), champion, label_free) == Verdict.PASS


def test_too_few_predictions_is_inconclusive_and_errors_fail() -> None:
    champion = arm(1, accuracy=0.9, labels=2000)
    assert verdict(arm(2, predictions=10), champion) == Verdict.INCONCLUSIVE
    assert verdict(arm(2, accuracy=0.9, labels=2000, errors=100, predictions=1000),
                   champion) == Verdict.FAIL


def test_probation_lets_a_worse_estimate_roll_back() -> None:
    """Rolling back returns to the version that served before: the safe way to be wrong."""
    analysis = assess(arm(2, estimated=0.8, labels=10), arm(1, estimated=0.9, labels=10),
                      POLICY, primary="accuracy", task="binary_classification",
                      estimate_rejects=True)
    assert analysis.verdict is Verdict.FAIL


def timed(version: int, p50: float, p99: float, cpu_ms: float = 2.0,
          calls: dict[int, int] | None = None) -> ArmStats:
    """An arm whose served rows came from `calls` ({batch size: calls}, default 200 calls
    of one row) costing `cpu_ms` per row of CPU time each, with wall-clock `p50`/`p99`."""
    sizes = np.concatenate([np.full(size * n, float(size))
                            for size, n in (calls or {1: 200}).items()])
    rng = np.random.default_rng(version)
    cpu = cpu_ms * sizes * rng.uniform(0.9, 1.1, sizes.size)  # bigger calls cost more
    return replace(arm(version, accuracy=0.9, labels=2000, seed=version),
                   latency_p50_ms=p50, latency_p99_ms=p99, model_cpu_ms=cpu,
                   batch_rows=sizes)


def latency(challenger: ArmStats, champion: ArmStats, **kwargs: object) -> dict[str, str]:
    return {c.name: c.verdict.value for c in latency_checks(challenger, champion, **kwargs)}


def latency_checks(challenger: ArmStats, champion: ArmStats, **kwargs: object) -> list[Check]:
    policy = POLICY.model_copy(update={"max_latency_ratio": 2.0, "max_p99_latency_ms": 200.0})
    result = assess(challenger, champion, policy, primary="accuracy",
                    task="binary_classification", **kwargs)  # type: ignore[arg-type]
    return [c for c in result.checks if c.name.startswith("latency")]


def test_latency_compares_the_model_cpu_time_of_the_arms_of_the_same_window() -> None:
    assert latency(timed(2, 8, 40), timed(1, 7, 35)) == {"latency_ratio": "pass",
                                                         "latency_ceiling": "pass"}
    # three times the champion's CPU per call, on the same machine at the same time
    slower = latency_checks(timed(2, 8, 40, cpu_ms=6.0), timed(1, 8, 40, cpu_ms=2.0))
    assert [c.verdict.value for c in slower] == ["fail", "pass"]
    assert 2.7 < (slower[0].value or 0) < 3.3
    assert "model CPU time per call, 200 calls in 1 batch size both arms served" in \
        slower[0].message
    # the same CPU per call, three times the served wall-clock median (a loaded machine,
    # a burst that queued on one arm): not the challenger's doing
    assert latency(timed(2, 24, 90), timed(1, 8, 40)) == {"latency_ratio": "pass",
                                                          "latency_ceiling": "pass"}
    # a busy machine slows both arms past the ceiling: the machine, not the challenger
    assert latency(timed(2, 90, 400), timed(1, 80, 380)) == {"latency_ratio": "pass",
                                                             "latency_ceiling": "inconclusive"}
    # the challenger alone is past the ceiling
    assert latency(timed(2, 15, 400), timed(1, 10, 60))["latency_ceiling"] == "fail"


def test_the_champions_bigger_batches_are_compared_like_with_like() -> None:
    """The champion takes most of the traffic, so its calls gather more rows and cost
    more each: a challenger twice as costly per row still fails when only calls of the
    same size are compared, and one as costly per row passes."""
    champion = timed(1, 8, 40, cpu_ms=1.0, calls={1: 100, 4: 200, 8: 100})
    assert champion.model_cpu_p50_ms is not None and champion.model_cpu_p50_ms > 3.5
    costly = timed(2, 8, 40, cpu_ms=2.5, calls={1: 150, 4: 10})
    # all calls pooled, the costly challenger would look cheaper than the champion
    assert costly.model_cpu_p50_ms is not None and costly.model_cpu_p50_ms < 3.0
    checks = latency_checks(costly, champion)
    assert checks[0].verdict is Verdict.FAIL and 2.2 < (checks[0].value or 0) < 2.8
    # per size, the smaller arm's calls: 100 of one row, 10 of four
    assert "110 calls in 2 batch sizes" in checks[0].message
    alike = latency_checks(timed(2, 8, 40, cpu_ms=1.0, calls={1: 150, 4: 10}), champion)
    assert alike[0].verdict is Verdict.PASS and 0.8 < (alike[0].value or 0) < 1.25


def test_no_cpu_ratio_without_calls_of_a_size_both_arms_served() -> None:
    """Rows logged before the CPU time was kept, or no batch size in common: no ratio,
    said so; the wall-clock p99 ceiling still guards."""
    unmeasured = replace(timed(2, 8, 40), model_cpu_ms=np.full(200, np.nan))
    checks = latency_checks(unmeasured, timed(1, 8, 40))
    assert checks[0].verdict is Verdict.PASS
    assert checks[0].message == ("no CPU time ratio: no model CPU time logged for the "
                                 "challenger's calls; the p99 ceiling still applies")
    apart = latency_checks(timed(2, 8, 40, cpu_ms=9.0, calls={3: 50}), timed(1, 8, 40))
    assert apart[0].verdict is Verdict.PASS and "no batch size served by both arms " \
        "(challenger: 3; champion: 1)" in apart[0].message
    few = latency_checks(timed(2, 8, 40, cpu_ms=9.0, calls={1: 4, 2: 90}), timed(1, 8, 40))
    assert few[0].verdict is Verdict.PASS and "4 calls of batch sizes both arms served < 10" \
        in few[0].message


def test_probation_cannot_roll_back_on_latency_it_cannot_attribute() -> None:
    """The old champion served in an earlier window: no ratio across different times, and
    a p99 over the ceiling may be the machine's: inconclusive, never a rollback."""
    checks = latency(timed(2, 30, 150, cpu_ms=6.0), timed(1, 5, 20), same_window=False,
                     estimate_rejects=True)
    assert checks == {"latency_ceiling": "pass"}
    busy = latency(timed(2, 300, 1145), timed(1, 5, 20), same_window=False,
                   estimate_rejects=True)
    assert busy == {"latency_ceiling": "inconclusive"}


def test_metric_messages_follow_the_metric_direction() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(50, 10, 600)

    def regression_arm(version: int, noise: float) -> ArmStats:
        return ArmStats(version=version, route="canary" if version == 2 else "champion",
                        predictions=600, labels=600, y_true=truth,
                        y_pred=truth + rng.normal(0, noise, 600))

    result = assess(regression_arm(2, 5.0), regression_arm(1, 10.0), POLICY, primary="rmse",
                    task="regression")
    check = result.check("metric")
    assert check is not None and check.verdict is Verdict.PASS
    assert check.message.startswith("rmse ") and " better; 95% CI of the improvement [+" in \
        check.message
    assert result.numbers["direction"] == "minimize" and result.numbers["improvement"] > 4
    worse = assess(regression_arm(2, 20.0), regression_arm(1, 5.0), POLICY, primary="rmse",
                   task="regression")
    assert worse.verdict is Verdict.FAIL and "worse by more than max_metric_drop" in \
        worse.message


def test_a_metric_the_window_does_not_define_is_inconclusive() -> None:
    no_positives = ArmStats(version=2, route="canary", predictions=500, labels=300,
                            y_true=np.zeros(300), y_pred=np.zeros(300))
    result = assess(no_positives, no_positives, POLICY, primary="recall",
                    task="binary_classification")
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.message == ("recall undefined for the challenger (no positive labels "
                              "(recall is 0/0)) on this window")


def test_a_probation_names_the_versions_it_compares() -> None:
    """In a probation the baseline is the version that served before and the champion is
    the new one: the message says which is which by version, not champion/challenger."""
    previous = arm(2, accuracy=0.9, labels=2000, seed=1)
    analysis = assess(arm(3, accuracy=0.6, labels=2000, seed=3), previous, POLICY,
                      primary="accuracy", task="binary_classification", same_window=False,
                      estimate_rejects=True)
    assert analysis.verdict is Verdict.FAIL
    assert "(version 2 -> version 3)" in analysis.message
    assert "champion" not in analysis.message
    canary = assess(arm(3, accuracy=0.6, labels=2000, seed=3), previous, POLICY,
                    primary="accuracy", task="binary_classification")
    assert "(champion -> challenger)" in canary.message
