"""The policies a replay compares, each run through the same server, controller and registry.

```
policy       the project's own tether.yaml: its triggers, canary, probation
static       the initial model forever: no trigger ever fires
periodic:P   retrain every P (e.g. 1y) on the recent labeled window and promote when the
             gate passes, with no canary and no probation: what most teams run as a cron job
```

>>> [arm.name for arm in parse_compare("static,periodic:1y")]
['policy', 'static', 'periodic:1y']
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.config import Policy
from tether.replay.history import ReplayInputError, parse_duration

__all__ = ["Arm", "arm_policy", "parse_compare"]

# the largest number of retrains a day a baseline may start: the budget is the project's
# safety net, not part of what a baseline is
UNLIMITED_RETRAINS = 1_000_000


@dataclass(frozen=True)
class Arm:
    """One policy of the comparison. `every`: seconds between retrains of `periodic`."""

    name: str
    kind: str  # "policy", "static" or "periodic"
    every: float | None = None


def parse_compare(text: str | None) -> list[Arm]:
    """The project's policy first, then the baselines of `--compare`, in the order given."""
    arms = [Arm("policy", "policy")]
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        if part == "static":
            arm = Arm("static", "static")
        elif part.startswith("periodic:"):
            every = parse_duration(part.removeprefix("periodic:"), f"--compare {part}")
            if every <= 0:
                raise ReplayInputError(f"--compare {part}: the period must be positive")
            arm = Arm(part, "periodic", every)
        elif part == "policy":
            continue
        else:
            raise ReplayInputError(f"--compare {part!r}: expected static or periodic:PERIOD "
                                   "(e.g. periodic:1y), separated by commas")
        if any(a.name == arm.name for a in arms):
            raise ReplayInputError(f"--compare: {part} is listed twice")
        arms.append(arm)
    return arms


def arm_policy(policy: Policy, arm: Arm) -> Policy:
    """The project's policy as `arm` runs it: unchanged for `policy`; for a baseline, no
    trigger of its own (a drift share can never exceed 1), and for `periodic` no budget,
    no cool-down and no probation (its promotions are the cron job's, unchecked)."""
    if arm.kind == "policy":
        return policy
    triggers = policy.triggers.model_copy(update={
        "schedule": None, "metric_floor": None, "metric_drop": None,
        "on_change_detected": False, "github_repo": None, "cooldown_seconds": 0.0,
        "max_retrains_per_day": UNLIMITED_RETRAINS})
    monitoring = policy.monitoring.model_copy(update={"drift_share_threshold": 1.0})
    rollback = policy.rollback.model_copy(update={"max_metric_drop": 1e9,
                                                  "max_error_rate": 1.0})
    return policy.model_copy(update={"triggers": triggers, "monitoring": monitoring,
                                     "rollback": rollback})
