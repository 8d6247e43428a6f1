"""Time `tether replay` on the rainfall history (18,159 days) with all three policies.

Run: PYTHONPATH=src .venv/bin/python benchmarks/replay/run.py [--years 50] [--json OUT]

Prints, in one run:
- the whole replay's wall time beside the 180 s goal, and each policy's share spent
  training, in MLflow (the registry), in the server path and in controller passes;
- rows per second through the real server path (/predict and /feedback of the `static`
  policy, in the batches a replay sends them) beside the same rows scored by a bare
  `model.predict_proba` loop on the same batches, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tether.config import load_config
from tether.example import rainfall_data
from tether.replay import ReplayOptions, load_history, replay
from tether.replay.datasets import RAINFALL_START, rainfall

GOAL_SECONDS = 180.0
EXAMPLE = Path(rainfall_data.__file__).resolve().parent / "rainfall"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=float, default=None,
                        help="Replay only the first YEARS of the history.")
    parser.add_argument("--compare", default="static,periodic:1y")
    parser.add_argument("--json", type=Path, default=None, help="Keep the document here.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-replay-"))
    try:
        for name in ("tether.yaml", "train.py"):
            shutil.copyfile(EXAMPLE / name, folder / name)
        frame = rainfall()
        if args.years is not None:
            frame = frame.iloc[: int(365 * args.years)]
        history = load_history(frame, target="rain", rate="1/d", start=RAINFALL_START)
        config = load_config(folder / "tether.yaml")
        started = time.perf_counter()
        document = replay(history, config, ReplayOptions(
            initial="3y", label_delay="1d", compare=args.compare))
        wall = time.perf_counter() - started
        bare_rows_per_second = bare_predict(folder, history, document)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=1))
    report(document, wall, bare_rows_per_second)


def bare_predict(folder: Path, history: object, document: dict) -> float:
    """Rows per second of the project's trainer's model called directly on the batches a
    replay sends outside a rollout (the rows between two passes)."""
    import importlib.util

    from tether.training import TrainContext

    assert hasattr(history, "frame")
    frame = history.frame  # type: ignore[attr-defined]
    start = document["data"]["initial_rows"]
    spec = importlib.util.spec_from_file_location("bench_rain_train", folder / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    initial = frame.iloc[:start]
    features = [c for c in frame.columns if c != "rain"]
    model = module.train(TrainContext(data=initial, target="rain", features=features,
                                      params={}, seed=7, sample_weight=np.ones(len(initial))))
    per_pass = max(1, round(document["data"]["pass_interval_seconds"] / 86400))
    rows = frame[features].iloc[start:]
    started = time.perf_counter()
    for lo in range(0, len(rows), per_pass):
        batch = rows.iloc[lo:lo + per_pass]
        model.predict(batch)
        model.predict_proba(batch)
    return len(rows) / (time.perf_counter() - started)


def report(document: dict, wall: float, bare: float) -> None:
    data = document["data"]
    print(f"rainfall: {data['replayed_rows']:,} rows replayed after {data['initial_rows']:,}, "
          f"{len(document['policies'])} policies, a pass every "
          f"{data['pass_interval_seconds'] / 86400:.0f} days")
    print(f"\n{'':28} {'seconds':>8} {'goal':>6} {'ratio':>6}")
    print(f"{'whole replay':28} {wall:>8.1f} {GOAL_SECONDS:>6.0f} {wall / GOAL_SECONDS:>6.2f}")
    print(f"\n{'policy':14} {'seconds':>8} {'training':>9} {'MLflow':>7} {'server':>7} "
          f"{'passes':>7} {'retrains':>9} {'requests':>9}")
    for policy in document["policies"]:
        costs = policy["costs"]
        parts = [costs[k] for k in ("training_seconds", "mlflow_seconds", "server_seconds",
                                    "controller_seconds")]
        total = sum(parts) + costs["setup_seconds"]
        shares = " ".join(f"{part / total:>{w}.0%}" for part, w in zip(parts, (9, 7, 7, 7),
                                                                        strict=True))
        print(f"{policy['name']:14} {total:>8.1f} {shares} {policy['retrains']:>9} "
              f"{costs['requests']:>9}")
    static = next((p for p in document["policies"] if p["name"] == "static"),
                  document["policies"][0])
    served = static["costs"]["rows"] / static["costs"]["server_seconds"]
    print(f"\n{'rows per second':28} {'server':>8} {'bare':>9} {'ratio':>6}")
    print(f"{'static, same batches':28} {served:>8.0f} {bare:>9.0f} {served / bare:>6.3f}")
    print("\nmean realized " + document["metric"]["name"] + ": " + ", ".join(
        f"{p['name']} {p['mean_metric']:.4f}" for p in document["policies"]))


if __name__ == "__main__":
    main()
