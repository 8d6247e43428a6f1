"""The gate's latency figure on an idle machine and with CPU-bound neighbours.

Run by hand from the repository root:

    PYTHONPATH=src .venv/bin/python benchmarks/gate/latency.py [--neighbours 2] [--rounds 3]

The example project's model (HistGradientBoosting behind an ordinal encoder, trained on
the loan-default generator as `tether demo` trains it) answers one row, measured two ways
in the same run:

- before: the wall-clock p99 of 50 consecutive calls with the native thread pools at
  their default size (one thread per core), what the gate judged until now;
- now: `tether.latency.time_interleaved`, challenger and champion (here the same model
  twice) in turn, CPU time of the calling thread with pools at one thread, median of 31
  rounds, and the challenger/champion ratio the gate judges.

Each condition runs `--rounds` times; the table prints the median of the rounds and the
ratio busy/idle for each figure. Neighbours are `python -c "while True: pass"` processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from tether.example.loans import generate
from tether.latency import time_interleaved

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src", "tether",
                                "example", "project"))
from train import train  # the example project's own trainer


class Context:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.X = frame.drop(columns="default")
        self.y = frame["default"]
        self.params = {"max_iter": 100, "learning_rate": 0.1}
        self.seed = 7
        self.sample_weight = np.ones(len(frame))


def before(predict: Callable[[], object]) -> float:
    predict()
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        predict()
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(timings, 99))


def now(predict: Callable[[], object]) -> tuple[float, float, float]:
    timing = time_interleaved({"challenger": predict, "champion": predict})
    mine, theirs = timing["challenger"], timing["champion"]
    return mine.cpu_ms, mine.wall_ms, mine.cpu_ms / theirs.cpu_ms


def measure(predict: Callable[[], object], rounds: int) -> dict[str, float]:
    found: dict[str, list[float]] = {"p99 wall, default threads (before)": [],
                                     "median CPU, 1 thread (now)": [],
                                     "median wall, 1 thread": [],
                                     "challenger/champion ratio (now)": []}
    for _ in range(rounds):
        found["p99 wall, default threads (before)"].append(before(predict))
        cpu, wall, ratio = now(predict)
        found["median CPU, 1 thread (now)"].append(cpu)
        found["median wall, 1 thread"].append(wall)
        found["challenger/champion ratio (now)"].append(ratio)
    return {name: statistics.median(values) for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neighbours", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    frame = generate(4000, seed=1)
    model = train(Context(frame))
    row = frame.drop(columns="default").head(1)

    def predict() -> object:
        return model.predict(row)

    idle = measure(predict, args.rounds)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.neighbours)]
    try:
        time.sleep(1)
        busy = measure(predict, args.rounds)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"cores available: {len(os.sched_getaffinity(0))}; neighbours: {args.neighbours}; "
          f"rounds: {args.rounds}")
    print(f"| figure (one row) | idle | {args.neighbours} neighbours | busy/idle |")
    print("|---|---|---|---|")
    for name in idle:
        unit = "" if "ratio" in name else " ms"
        print(f"| {name} | {idle[name]:.3f}{unit} | {busy[name]:.3f}{unit} | "
              f"{busy[name] / idle[name]:.2f} |")


if __name__ == "__main__":
    main()
