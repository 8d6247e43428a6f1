"""One rollout step's verdict from the numbers of two arms (no registry, no store)."""

from __future__ import annotations

import numpy as np

from tether.config import RolloutPolicy
from tether.control.analysis import ArmStats, Verdict, assess

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
