"""A deterministic loan-default data set with knobs for covariate shift and concept drift.

`shift` moves the applicants (lower incomes, more debt, worse credit); `concept`
changes what makes them default (late payments start to matter much more, credit
score much less), so a model trained before it is wrong after it.

>>> frame = generate(n=4, seed=7)
>>> list(frame.columns)  # doctest: +NORMALIZE_WHITESPACE
['income', 'loan_amount', 'credit_score', 'age', 'employment_years', 'debt_to_income',
 'late_payments', 'home_ownership', 'purpose', 'default']
>>> generate(n=1000, seed=1)["default"].between(0, 1).all()
np.True_
>>> bool(generate(n=50, seed=3).equals(generate(n=50, seed=3)))
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FEATURES", "TARGET", "generate"]

TARGET = "default"
FEATURES = ["income", "loan_amount", "credit_score", "age", "employment_years",
            "debt_to_income", "late_payments", "home_ownership", "purpose"]
_OWNERSHIP = np.array(["rent", "own", "mortgage"])
_PURPOSE = np.array(["car", "home", "education", "business", "debt"])


def generate(n: int = 5000, seed: int = 0, shift: float = 0.0, concept: float = 0.0,
             label_noise: float = 0.0) -> pd.DataFrame:
    """`n` applicants; `shift` and `concept` in [0, 1] set how far the world has moved."""
    if n < 0:
        raise ValueError("n must be zero or more.")
    if not (0.0 <= shift <= 1.0 and 0.0 <= concept <= 1.0):
        raise ValueError("shift and concept must lie in [0, 1].")
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=10.8 - 0.35 * shift, sigma=0.45, size=n)
    loan_amount = rng.gamma(shape=2.0 + shift, scale=6000.0, size=n)
    credit_score = np.clip(rng.normal(680 - 60 * shift, 60, size=n), 300, 850)
    age = np.clip(rng.normal(40, 11, size=n), 18, 80).round()
    employment_years = np.clip(rng.exponential(6.0 - 3.0 * shift, size=n), 0, 45).round(1)
    debt_to_income = np.clip(rng.beta(2 + 2 * shift, 5, size=n), 0, 1)
    late_payments = rng.poisson(0.6 + 1.2 * shift, size=n).astype(float)
    ownership_p = np.array([0.4 + 0.2 * shift, 0.25 - 0.1 * shift, 0.35 - 0.1 * shift])
    home_ownership = rng.choice(_OWNERSHIP, size=n, p=ownership_p / ownership_p.sum())
    purpose = rng.choice(_PURPOSE, size=n, p=[0.25, 0.2, 0.15, 0.15, 0.25])

    credit_weight = -0.018 * (1 - 0.8 * concept)
    late_weight = 0.45 + 1.4 * concept
    logit = (
        -1.4
        + credit_weight * (credit_score - 680)
        + 3.0 * (debt_to_income - 0.3)
        + late_weight * late_payments
        + 0.9 * (loan_amount / income - 0.25)
        - 0.05 * employment_years
        + 0.5 * (home_ownership == "rent")
        + 0.6 * (purpose == "business")
        - 0.6 * concept * (purpose == "home")
    )
    probability = 1.0 / (1.0 + np.exp(-logit))
    default = (rng.random(n) < probability).astype(int)
    if label_noise > 0:
        flip = rng.random(n) < label_noise
        default = np.where(flip, 1 - default, default)
    return pd.DataFrame({
        "income": income.round(2),
        "loan_amount": loan_amount.round(2),
        "credit_score": credit_score.round(),
        "age": age,
        "employment_years": employment_years,
        "debt_to_income": debt_to_income.round(4),
        "late_payments": late_payments,
        "home_ownership": home_ownership,
        "purpose": purpose,
        TARGET: default,
    })
