"""Label-free performance estimates vs the realized metrics, window by window.

Run by hand from the repository root:

    PYTHONPATH=src .venv/bin/python benchmarks/monitoring/estimation.py

Data where the model stays calibrated: labels drawn from a logistic model, the monitored
model a logistic regression fitted on reference data (well specified), and the live
windows under growing covariate shift (the feature means move, so accuracy and ROC AUC
change while P(y | x) does not). The calibrator is fitted on a reference holdout, as at
training time. Baseline: assume the holdout figure still holds (what you know without
labels and without an estimator); the "true probabilities" rows use the exact P(y | x)
instead of the calibrator and show how much of the error is the realized metric's own
sampling noise. Second block: the loan-default example with its
gradient-boosting model (not guaranteed calibrated), for information.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from tether.example.loans import generate
from tether.monitoring.estimation import Calibrator, estimate_performance

WEIGHTS = np.array([1.2, -0.8, 0.6, 0.0, 0.4])


def synthetic(n: int, shift: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Features whose mean moves by `shift` along the weights (base rate and accuracy
    change) and whose spread grows with |shift|; P(y | x) never changes."""
    mean = shift * WEIGHTS / np.linalg.norm(WEIGHTS)
    x = rng.normal(mean, 1.0 + 0.3 * abs(shift), size=(n, len(WEIGHTS)))
    p = 1 / (1 + np.exp(-(x @ WEIGHTS - 0.5)))
    return x, (rng.random(n) < p).astype(int)


def evaluate(windows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
             calibrator: Calibrator, holdout: dict[str, float]) -> dict[str, float]:
    errors: dict[str, list[float]] = {"accuracy": [], "roc_auc": [], "naive_accuracy": [],
                                      "naive_roc_auc": []}
    for score, predicted, truth in windows:
        estimate = estimate_performance(calibrator, score, predicted)
        realized = {"accuracy": accuracy_score(truth, predicted),
                    "roc_auc": roc_auc_score(truth, score)}
        for metric in ("accuracy", "roc_auc"):
            errors[metric].append(abs(estimate[metric] - realized[metric]))
            errors[f"naive_{metric}"].append(abs(holdout[metric] - realized[metric]))
    return {k: float(np.mean(v)) for k, v in errors.items()}


def row(name: str, size: int, count: int, result: dict[str, float]) -> str:
    return (f"| {name} | {size:,} | {count} | {result['accuracy']:.4f} | "
            f"{result['naive_accuracy']:.4f} | "
            f"{result['accuracy'] / result['naive_accuracy']:.2f} | {result['roc_auc']:.4f} | "
            f"{result['naive_roc_auc']:.4f} | {result['roc_auc'] / result['naive_roc_auc']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20_000])
    parser.add_argument("--holdout", type=int, default=20_000)
    args = parser.parse_args()
    print("| data | window rows | windows | MAE accuracy (tether) | MAE accuracy (holdout "
          "figure) | ratio | MAE ROC AUC (tether) | MAE ROC AUC (holdout figure) | ratio |")
    print("|" + "---|" * 9)
    rng = np.random.default_rng(0)
    x, y = synthetic(20_000, 0.0, rng)
    model = LogisticRegression().fit(x, y)
    hx, hy = synthetic(args.holdout, 0.0, rng)
    holdout_score = model.predict_proba(hx)[:, 1]
    calibrator = Calibrator.fit(holdout_score, hy)
    oracle = Calibrator(x=[0.0, 1.0], y=[0.0, 1.0])  # the true probabilities: noise floor
    holdout = {"accuracy": accuracy_score(hy, model.predict(hx)),
               "roc_auc": roc_auc_score(hy, holdout_score)}
    for size in args.sizes:
        windows = []
        for shift in np.linspace(-1.0, 2.0, args.windows):
            wx, wy = synthetic(size, float(shift), rng)
            windows.append((model.predict_proba(wx)[:, 1], model.predict(wx), wy))
        print(row(f"calibrated (logistic, covariate shift), holdout {args.holdout:,}", size,
                  args.windows, evaluate(windows, calibrator, holdout)), flush=True)
        print(row("same windows, true probabilities (sampling-noise floor)", size,
                  args.windows, evaluate(windows, oracle, holdout)), flush=True)

    train, hold = generate(8000, seed=1), generate(args.holdout, seed=2)
    features = [c for c in train.columns if c != "default"]

    def encode(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[features].astype({"home_ownership": "category", "purpose": "category"})

    booster = HistGradientBoostingClassifier(max_iter=100, categorical_features="from_dtype",
                                             random_state=0).fit(encode(train), train["default"])
    hold_score = booster.predict_proba(encode(hold))[:, 1]
    loans_calibrator = Calibrator.fit(hold_score, hold["default"].to_numpy())
    loans_holdout = {"accuracy": accuracy_score(hold["default"], booster.predict(encode(hold))),
                     "roc_auc": roc_auc_score(hold["default"], hold_score)}
    for size in args.sizes:
        windows = []
        for index, shift in enumerate(np.linspace(0, 1, args.windows)):
            frame = generate(size, seed=100 + index, shift=float(shift))
            windows.append((booster.predict_proba(encode(frame))[:, 1],
                            booster.predict(encode(frame)), frame["default"].to_numpy()))
        print(row("loan example (gradient boosting, covariate shift)", size, args.windows,
                  evaluate(windows, loans_calibrator, loans_holdout)), flush=True)


if __name__ == "__main__":
    main()
