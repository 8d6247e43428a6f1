"""One language for decisions: a `Verdict`, the `Check`s behind it and the `Assessment`
that combines them.

The gate (challenger vs champion on held-out rows) and the rollout analysis (challenger
vs champion on live traffic, and a new champion on probation) both return an
`Assessment`; events, the registry's `tether.gate` tag and the dashboard store its
`as_dict()`. Any failed check fails the assessment; otherwise any inconclusive check
makes it inconclusive (too little data to decide, which is never a pass); otherwise it
passes.

>>> checks = [Check("error_rate", Verdict.PASS, "error rate 0.0010 <= max_error_rate 0.01"),
...           Check("metric", Verdict.INCONCLUSIVE, "labels 12 < min_labels 50")]
>>> result = Assessment(checks)
>>> result.verdict.value, result.passed, result.message
('inconclusive', False, 'labels 12 < min_labels 50')
>>> result.as_dict()["checks"][0]["verdict"]
'pass'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = ["Assessment", "Check", "Verdict"]


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Check:
    """One rule applied to one number: its verdict and the sentence that says why."""

    name: str
    verdict: Verdict
    message: str
    value: float | None = None
    threshold: float | None = None

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "passed": self.passed,
                "message": self.message, "value": _number(self.value),
                "threshold": _number(self.threshold)}


@dataclass(frozen=True)
class Assessment:
    """Checks and the numbers behind them (JSON-ready), combined into one verdict."""

    checks: list[Check]
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        found = {check.verdict for check in self.checks}
        if Verdict.FAIL in found:
            return Verdict.FAIL
        if Verdict.INCONCLUSIVE in found:
            return Verdict.INCONCLUSIVE
        return Verdict.PASS

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def failed(self) -> list[Check]:
        """The checks that did not pass."""
        return [check for check in self.checks if not check.passed]

    @property
    def message(self) -> str:
        """The reasons that decided the verdict (every check's, on a pass)."""
        deciding = [c.message for c in self.checks if c.verdict is self.verdict]
        return "; ".join(deciding or [c.message for c in self.checks])

    @property
    def summary(self) -> str:
        """'passed: ...', 'failed: ...' or 'inconclusive: ...'."""
        word = {Verdict.PASS: "passed", Verdict.FAIL: "failed",
                Verdict.INCONCLUSIVE: "inconclusive"}[self.verdict]
        return f"{word}: {self.message}"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def with_numbers(self, **numbers: Any) -> Assessment:
        return replace(self, numbers={**self.numbers, **numbers})

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "passed": self.passed, "message": self.message,
                "checks": [check.as_dict() for check in self.checks], **self.numbers}


def _number(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None
