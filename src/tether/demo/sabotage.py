"""A release that trains fine and is wrong in production: its labels are flipped.

The demo promotes it by hand, skipping the canary, so that probation has to catch it.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tether.training import TrainContext

CATEGORICAL = ["home_ownership", "purpose"]


def train(ctx: TrainContext) -> Any:
    numeric = [name for name in ctx.features if name not in CATEGORICAL]
    model = Pipeline([
        ("encode", ColumnTransformer([
            ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numbers", StandardScaler(), numeric)])),
        ("logistic", LogisticRegression(max_iter=500)),
    ])
    return model.fit(ctx.X, 1 - ctx.y)
