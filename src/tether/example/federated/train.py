"""The federated trainer: tether calls train(ctx); the hospitals train, tether registers.

`run_federated` runs the Flower app in `app/` on the SuperLink named in tether.yaml and
returns the global model FedAvg produced, built here as the scikit-learn pipeline that
tether registers, gates and serves.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tether.federated import run_federated


def build(arrays, features):
    """Standardise with the pooled statistics, then the averaged logistic regression."""
    names = np.asarray(features, dtype=object)
    scaler = StandardScaler()
    scaler.mean_ = arrays["mean"]
    scaler.scale_ = arrays["scale"]
    scaler.var_ = np.square(arrays["scale"])
    scaler.n_features_in_ = len(features)
    scaler.feature_names_in_ = names
    scaler.n_samples_seen_ = 0
    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = arrays["coef"]
    model.intercept_ = arrays["intercept"]
    model.n_features_in_ = len(features)
    model.n_iter_ = np.array([0])
    return Pipeline([("scale", scaler), ("model", model)])


def train(ctx):
    return run_federated(ctx, lambda arrays: build(arrays, ctx.features))
