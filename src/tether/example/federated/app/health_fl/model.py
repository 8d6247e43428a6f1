"""The model both sides agree on: logistic regression on standardised features.

Its parameters travel as four named arrays: `mean` and `scale` (the pooled feature
statistics every site standardises with), `coef` (1 x features) and `intercept` (1,).
tether rebuilds the same model as a scikit-learn pipeline (StandardScaler, then
LogisticRegression with C=1) from these arrays.

Written with NumPy alone, on purpose: Flower starts a fresh ClientApp process for every
message, and importing pandas and scikit-learn there cost about 3.5 s per message on a
busy 2-core machine, most of a round. The objective is scikit-learn's with C=1 (the sum
of log losses plus half the squared weights); each site takes full-batch gradient steps
(local epochs) from the global weights. Plain gradient steps keep FedAvg's fixed point
at the pooled optimum; local Newton steps would converge each site to its own optimum,
and their average stays about 0.006 ROC AUC short of pooled training on these non-IID
hospitals (benchmarks/federated).
"""

from __future__ import annotations

import csv

import numpy as np

ARRAY_NAMES = ("mean", "scale", "coef", "intercept")
L2 = 1.0
LEARNING_RATE = 1.0  # standardised features keep the logistic loss 0.25-smooth
EPS = 1e-12


def read_columns(path: str, columns: list[str]) -> np.ndarray:
    """The named columns of a CSV file as float64 (rows with an empty cell dropped)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"{path}: no column(s) {', '.join(missing)}")
        index = [header.index(c) for c in columns]
        rows = [[row[i] for i in index] for row in reader]
    values = np.array([[float(v) if v.strip() else np.nan for v in row] for row in rows],
                      dtype=np.float64).reshape(-1, len(columns))
    return values[np.isfinite(values).all(axis=1)]


def initial_arrays(mean: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Zero weights on the pooled statistics: the global model before round 1."""
    features = len(mean)
    return {"mean": mean.astype(np.float64), "scale": scale.astype(np.float64),
            "coef": np.zeros((1, features)), "intercept": np.zeros(1)}


def standardise(x: np.ndarray, arrays: dict[str, np.ndarray]) -> np.ndarray:
    return (x - arrays["mean"]) / arrays["scale"]


def predict_proba(arrays: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    logit = z @ arrays["coef"][0] + arrays["intercept"][0]
    return 1.0 / (1.0 + np.exp(-logit))


def fit(arrays: dict[str, np.ndarray], z: np.ndarray, y: np.ndarray, epochs: int,
        learning_rate: float = LEARNING_RATE) -> dict[str, np.ndarray]:
    """`epochs` full-batch gradient steps on the local rows (standardised features, mean
    gradient), starting from the global weights."""
    design = np.hstack([z, np.ones((len(z), 1))])
    theta = np.concatenate([arrays["coef"][0], arrays["intercept"]])
    penalty = np.full(len(theta), L2)
    penalty[-1] = 0.0  # the intercept is not penalised, as in scikit-learn
    rows = max(len(z), 1)
    for _ in range(epochs):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = (design.T @ (p - y) + penalty * theta) / rows
        theta = theta - learning_rate * gradient
    return {**arrays, "coef": theta[:-1][None, :].copy(), "intercept": theta[-1:].copy()}


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve from average ranks (Mann-Whitney U); NaN for one class."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # average rank of each tie group
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2.0)
                 / (positives * negatives))


def split(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a seeded (train, validation) split."""
    order = np.random.default_rng(seed).permutation(n)
    cut = round(n * (1 - share))
    return order[:cut], order[cut:]
